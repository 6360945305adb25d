//! Local sign-in: lockout check, password verification, bookkeeping and audit, in one place.
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::{
    store::{
        audit::{self, AuditEvent, Outcome},
        lockout::{self, AfterFailure},
        users::{self, User},
    },
    Core,
};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid username or password")]
    InvalidCredentials { remaining: i64 },
    #[error("too many failed attempts")]
    Locked { until: OffsetDateTime },
    #[error("storage failed: {0}")]
    Storage(#[from] sqlx::Error),
}

impl LoginError {
    /// The reason code recorded in the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            LoginError::InvalidCredentials { .. } => "invalid_credentials",
            LoginError::Locked { .. } => "locked",
            LoginError::Storage(_) => "internal",
        }
    }
}

/// Checks a username and password from `ip`. Unknown usernames cost the same as known ones and
/// count towards lockout like them, so neither timing nor lockout tells which accounts exist.
pub async fn login_local(core: &Core, username: &str, password: &SecretString, ip: &str) -> Result<User, LoginError> {
    let now = core.clock.now();
    let result = check(core, username, password, ip, now).await;
    let entry = AuditEvent {
        reason: result.as_ref().err().map(LoginError::code),
        username: Some(username),
        ip: Some(ip),
        method: Some("password"),
        ..AuditEvent::new(
            "login",
            if result.is_ok() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
        )
    };
    if let Err(err) = audit::record(&core.db, now, &entry).await {
        tracing::error!(error = %err, "could not write the audit log");
    }
    result
}

async fn check(
    core: &Core,
    username: &str,
    password: &SecretString,
    ip: &str,
    now: OffsetDateTime,
) -> Result<User, LoginError> {
    if let Some(until) = lockout::locked_until(&core.db, username, ip, now).await? {
        return Err(LoginError::Locked { until });
    }
    let account = users::find_local(&core.db, username.trim()).await?;
    let stored_hash = account.as_ref().and_then(|a| a.password_hash.as_deref());
    if core.passwords.verify(password, stored_hash).await {
        if let Some(account) = account {
            lockout::clear_account(&core.db, username).await?;
            return Ok(account.user);
        }
    }
    match lockout::record_failure(&core.db, username, ip, now).await? {
        AfterFailure::AttemptsLeft(remaining) => Err(LoginError::InvalidCredentials { remaining }),
        AfterFailure::LockedUntil(until) => Err(LoginError::Locked { until }),
    }
}

/// Completes an SSO sign-in: records the user (keyed by issuer + subject) and the audit entry.
pub async fn record_sso_login(
    core: &Core,
    completed: &crate::oidc::flow::CompletedLogin,
    ip: &str,
) -> Result<crate::session::SessionUser, sqlx::Error> {
    let now = core.clock.now();
    let identity = &completed.identity;
    let role = if identity.is_admin {
        users::Role::Admin
    } else {
        users::Role::Viewer
    };
    let user = users::upsert_oidc(
        &core.db,
        &completed.issuer,
        &identity.subject,
        &identity.username,
        identity.email.as_deref(),
        role,
        now,
    )
    .await?;
    let entry = AuditEvent {
        username: Some(&user.username),
        ip: Some(ip),
        method: Some("oidc"),
        ..AuditEvent::new("login", Outcome::Success)
    };
    audit::record(&core.db, now, &entry).await?;
    Ok(crate::session::SessionUser {
        user_id: user.id,
        username: user.username,
        email: user.email,
        groups: identity.groups.clone(),
        role,
        auth_method: crate::session::AuthMethod::Oidc,
        signed_in_at: now.unix_timestamp(),
    })
}

/// Records a refused SSO sign-in with its reason code.
pub async fn record_sso_failure(core: &Core, code: &str, ip: &str) {
    let entry = AuditEvent {
        reason: Some(code),
        ip: Some(ip),
        method: Some("oidc"),
        ..AuditEvent::new("login", Outcome::Failure)
    };
    if let Err(err) = audit::record(&core.db, core.clock.now(), &entry).await {
        tracing::error!(error = %err, "could not write the audit log");
    }
}

/// Who is connecting, as recorded with a session.
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo<'a> {
    pub ip: &'a str,
    pub user_agent: Option<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum SessionStartError {
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
}

/// A sign-in in a browser that is already signed in replaces that session: its registry entry
/// ends too, or the sessions screen would list a session nobody holds any more.
async fn retire_replaced_session(core: &Core, session: &tower_sessions::Session) -> Result<(), SessionStartError> {
    if let Some(binding) = crate::session::binding(session).await? {
        crate::store::sessions::revoke_binding(&core.db, &binding, "signed_in_again", core.clock.now()).await?;
        core.revoke_bindings([binding], "signed_in_again");
    }
    Ok(())
}

/// Signs a local user in: a fresh session id, 24 hours or 30 days ("Remember me"), registered.
pub async fn start_local_session(
    core: &Core,
    session: &tower_sessions::Session,
    user: &User,
    remember_me: bool,
    client: ClientInfo<'_>,
) -> Result<(), SessionStartError> {
    use crate::session::{SessionUser, DEFAULT_LIFETIME, REMEMBER_ME_LIFETIME};
    retire_replaced_session(core, session).await?;
    let now = core.clock.now();
    let lifetime = if remember_me {
        REMEMBER_ME_LIFETIME
    } else {
        DEFAULT_LIFETIME
    };
    let binding = crate::session::sign_in(session, &SessionUser::local(user, now), lifetime, now).await?;
    let new = crate::store::sessions::NewSession {
        binding: &binding,
        user_id: user.id,
        username: &user.username,
        method: "password",
        ip: Some(client.ip),
        user_agent: client.user_agent,
        ..Default::default()
    };
    crate::store::sessions::register(&core.db, &new, now, now + lifetime).await?;
    Ok(())
}

/// Signs an SSO user in, keeping the sealed tokens, registered with the provider's `sid`.
pub async fn start_sso_session(
    core: &Core,
    session: &tower_sessions::Session,
    user: &crate::session::SessionUser,
    completed: &crate::oidc::flow::CompletedLogin,
    client: ClientInfo<'_>,
) -> Result<(), SessionStartError> {
    retire_replaced_session(core, session).await?;
    let now = core.clock.now();
    let subject = &completed.identity.subject;
    let binding = crate::session::sign_in_sso(session, &core.cipher, user, subject, &completed.tokens, now).await?;
    let has_refresh = completed.tokens.refresh_token.is_some();
    let lifetime = if has_refresh {
        crate::session::SSO_ABSOLUTE_LIFETIME
    } else {
        crate::session::DEFAULT_LIFETIME
    };
    let new = crate::store::sessions::NewSession {
        binding: &binding,
        user_id: user.user_id,
        username: &user.username,
        method: "oidc",
        oidc_issuer: Some(&completed.issuer),
        oidc_subject: Some(subject),
        oidc_sid: completed.tokens.sid.as_deref(),
        has_refresh,
        ip: Some(client.ip),
        user_agent: client.user_agent,
    };
    crate::store::sessions::register(&core.db, &new, now, now + lifetime).await?;
    Ok(())
}

/// Ends this browser's session: marked revoked in the registry, then deleted from the store.
pub async fn end_session(
    core: &Core,
    session: &tower_sessions::Session,
    reason: &str,
) -> Result<(), SessionStartError> {
    if let Some(binding) = crate::session::binding(session).await? {
        crate::store::sessions::revoke_binding(&core.db, &binding, reason, core.clock.now()).await?;
        core.revoke_bindings([binding], reason);
    }
    crate::session::sign_out(session).await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ChangePasswordError {
    #[error("the current password is wrong")]
    WrongCurrent,
    #[error("{0}")]
    Rejected(crate::password::PasswordError),
    #[error("the two new passwords differ")]
    Mismatch,
    #[error("this account signs in with single sign-on and has no password here")]
    NotLocal,
    #[error("storage failed: {0}")]
    Storage(#[from] sqlx::Error),
}

/// Changes a local user's password; every other session of that user ends.
pub async fn change_password(
    core: &Core,
    user_id: i64,
    keep_binding: &str,
    current: &SecretString,
    new: &SecretString,
    confirm: &SecretString,
    ip: &str,
) -> Result<(), ChangePasswordError> {
    use secrecy::ExposeSecret;
    let stored = users::password_hash_by_id(&core.db, user_id)
        .await?
        .ok_or(ChangePasswordError::NotLocal)?;
    if !core.passwords.verify(current, Some(&stored)).await {
        return Err(ChangePasswordError::WrongCurrent);
    }
    crate::password::check_new_password(new).map_err(ChangePasswordError::Rejected)?;
    if new.expose_secret() != confirm.expose_secret() {
        return Err(ChangePasswordError::Mismatch);
    }
    let hash = core.passwords.hash(new).await.map_err(ChangePasswordError::Rejected)?;
    let now = core.clock.now();
    users::set_password_hash(&core.db, user_id, &hash, now).await?;
    let ended = crate::store::sessions::revoke_others(&core.db, user_id, keep_binding, "password_changed", now).await?;
    core.revoke_bindings(ended, "password_changed");
    let entry = AuditEvent {
        ip: Some(ip),
        detail: Some("password changed"),
        ..AuditEvent::new("settings", Outcome::Success)
    };
    let username = users::find_by_id(&core.db, user_id).await?.map(|u| u.username);
    audit::record(
        &core.db,
        now,
        &AuditEvent {
            username: username.as_deref(),
            ..entry
        },
    )
    .await?;
    Ok(())
}

/// Records a settings change (never the values of secrets).
pub async fn record_settings_change(core: &Core, username: &str, ip: &str, what: &str) {
    let entry = AuditEvent {
        username: Some(username),
        ip: Some(ip),
        detail: Some(what),
        ..AuditEvent::new("settings", Outcome::Success)
    };
    if let Err(err) = audit::record(&core.db, core.clock.now(), &entry).await {
        tracing::error!(error = %err, "could not write the audit log");
    }
}

/// Ends a session from the Sessions screen: a user may end their own sessions, an admin anyone's.
/// `Ok(false)` when `binding` is not a live session the actor may end.
pub async fn revoke_session(
    core: &Core,
    actor: &crate::session::SessionUser,
    binding: &str,
) -> Result<bool, sqlx::Error> {
    let now = core.clock.now();
    let owner = (!actor.is_admin()).then_some(actor.user_id);
    let allowed = crate::store::sessions::active(&core.db, owner, now)
        .await?
        .iter()
        .any(|row| row.binding == binding);
    if !allowed {
        return Ok(false);
    }
    let revoked = crate::store::sessions::revoke_binding(&core.db, binding, "revoked_by_user", now).await?;
    core.revoke_bindings(revoked, "revoked_by_user");
    Ok(true)
}
