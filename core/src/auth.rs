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
pub async fn login_local(
    core: &Core,
    username: &str,
    password: &SecretString,
    ip: &str,
) -> Result<User, LoginError> {
    let now = core.clock.now();
    let result = check(core, username, password, ip, now).await;
    let entry = AuditEvent {
        reason: result.as_ref().err().map(LoginError::code),
        username: Some(username),
        ip: Some(ip),
        method: Some("password"),
        ..AuditEvent::new("login", if result.is_ok() { Outcome::Success } else { Outcome::Failure })
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
    let role = if identity.is_admin { users::Role::Admin } else { users::Role::Viewer };
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
