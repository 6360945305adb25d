//! Keeping SSO sessions fresh: when a session's access token is due, exactly one request refreshes
//! it while concurrent requests of the same session wait and adopt the result (refresh tokens
//! rotate, and a reused one makes the provider revoke the whole family). A refusal ends the session
//! at once; an unreachable provider does not, until the access token has actually expired.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex as StdMutex},
};

use secrecy::ExposeSecret;
use time::{Duration, OffsetDateTime};
use tokio::sync::Mutex;
use tower_sessions::{session::Error as SessionError, Session};

use crate::{
    oidc::refresh::RefreshError,
    session::{self, AuthMethod, StoredTokens},
    store::{
        audit::{self, AuditEvent, Outcome},
        users::Role,
    },
    Core,
};

/// The most a refresh is done ahead of expiry; otherwise a fifth of the token's lifetime.
const MAX_LEAD: Duration = Duration::minutes(5);
const MAX_BACKOFF: Duration = Duration::minutes(1);

/// Whether the request may go on signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Freshness {
    /// Not an SSO session, nothing due, or refreshed.
    Fresh,
    /// The session ended now; the reason is for the login page and the audit log.
    Ended { reason: &'static str },
}

#[derive(Debug, Default)]
struct Slot {
    /// The newest sealed token set and its expiry, for waiters that loaded an older one.
    latest: Option<(String, i64, session::SessionUser)>,
    ended: Option<&'static str>,
    failures: u32,
    retry_at: Option<OffsetDateTime>,
}

/// Per-session locks, keyed by the session's random binding.
#[derive(Debug, Default)]
pub struct RefreshCoordinator {
    slots: StdMutex<HashMap<String, Arc<Mutex<Slot>>>>,
    /// When each session's "last seen" was last written, so it is written at most once a minute.
    last_touch: StdMutex<HashMap<String, OffsetDateTime>>,
}

/// How stale a session's "last seen" may get before it is written again.
const TOUCH_INTERVAL: Duration = Duration::minutes(1);

impl RefreshCoordinator {
    /// Whether "last seen" should be written now for `binding` (and notes that it will be).
    fn should_touch(&self, binding: &str, now: OffsetDateTime) -> bool {
        let mut touched = self.last_touch.lock().unwrap_or_else(|p| p.into_inner());
        if touched.len() > 100_000 {
            touched.clear();
        }
        match touched.get(binding) {
            Some(at) if now - *at < TOUCH_INTERVAL => false,
            _ => {
                touched.insert(binding.to_owned(), now);
                true
            }
        }
    }

    fn slot(&self, binding: &str) -> Arc<Mutex<Slot>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        if slots.len() > 10_000 {
            // Forget idle entries; a slot in use is held by an Arc elsewhere and survives.
            slots.retain(|_, slot| Arc::strong_count(slot) > 1);
        }
        slots.entry(binding.to_owned()).or_default().clone()
    }

    pub fn forget(&self, binding: &str) {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).remove(binding);
    }
}

/// When a token set is due for refresh.
pub fn due_at(tokens: &StoredTokens) -> Option<OffsetDateTime> {
    let expires = OffsetDateTime::from_unix_timestamp(tokens.access_expires_at?).ok()?;
    let lifetime = Duration::seconds(tokens.access_expires_at? - tokens.access_issued_at);
    let lead: Duration = lifetime / 5;
    Some(expires - lead.min(MAX_LEAD).max(Duration::ZERO))
}

/// Refreshes the session's tokens when due. Call once per request, before the handler runs.
pub async fn ensure_fresh(core: &Core, session: &Session) -> Result<Freshness, SessionError> {
    let Some(user) = session::current_user(session).await? else {
        return Ok(Freshness::Fresh);
    };
    if let Some(binding) = session::binding(session).await? {
        if let Some(why) = core.revocation_reason(&binding) {
            session.flush().await?;
            let reason = if why == "backchannel_logout" {
                "idp_logout"
            } else {
                "revoked"
            };
            return Ok(Freshness::Ended { reason });
        }
        let now = core.clock.now();
        if core.refresh.should_touch(&binding, now) {
            if let Err(err) = crate::store::sessions::touch(&core.db, &binding, now).await {
                tracing::warn!(error = %err, "could not record when the session was last seen");
            }
        }
    }
    if user.auth_method != AuthMethod::Oidc {
        return Ok(Freshness::Fresh);
    }
    let Some((binding, sealed)) = session::sealed_tokens(session).await? else {
        return Ok(Freshness::Fresh);
    };
    let Some(tokens) = session::open_tokens(&core.cipher, &binding, &sealed) else {
        return end(core, session, &binding, &user.username, "session_unreadable").await;
    };
    let now = core.clock.now();
    let (Some(refresh_token), Some(due)) = (tokens.refresh_token.clone(), due_at(&tokens)) else {
        // No refresh token: a fixed-lifetime session that is not checked at the provider again.
        return Ok(Freshness::Fresh);
    };
    if now < due {
        return Ok(Freshness::Fresh);
    }

    let slot = core.refresh.slot(&binding);
    let mut slot = slot.lock().await;
    if let Some(reason) = slot.ended {
        return end(core, session, &binding, &user.username, reason).await;
    }
    if let Some((latest, expires, latest_user)) = &slot.latest {
        if Some(*expires) > tokens.access_expires_at {
            // Another request of this session refreshed while this one waited: adopt its result.
            session::replace_tokens(session, latest, latest_user).await?;
            return Ok(Freshness::Fresh);
        }
    }
    let expired = tokens.access_expires_at.is_some_and(|at| now.unix_timestamp() >= at);
    if slot.retry_at.is_some_and(|at| now < at) && !expired {
        return Ok(Freshness::Fresh);
    }

    let secret = secrecy::SecretString::from(refresh_token);
    match core.oidc.refresh(&secret, &tokens.subject, now).await {
        Ok(refreshed) => {
            let mut new_user = user.clone();
            if let Some(identity) = &refreshed.identity {
                new_user.role = if identity.is_admin { Role::Admin } else { Role::Viewer };
                new_user.groups = identity.groups.clone();
                new_user.email = identity.email.clone().or(new_user.email);
            }
            let new_tokens = StoredTokens {
                id_token: refreshed
                    .id_token
                    .map(|t| t.expose_secret().to_owned())
                    .unwrap_or(tokens.id_token),
                // Rotation: the new refresh token replaces the old; without one the old stays valid.
                refresh_token: Some(refreshed.refresh_token.unwrap_or(secret).expose_secret().to_owned()),
                access_token: refreshed.access_token.expose_secret().to_owned(),
                access_issued_at: now.unix_timestamp(),
                access_expires_at: refreshed.access_expires_at.map(OffsetDateTime::unix_timestamp),
                sid: tokens.sid,
                subject: tokens.subject,
            };
            let sealed = session::seal_tokens(&core.cipher, &binding, &new_tokens);
            session::replace_tokens(session, &sealed, &new_user).await?;
            // Persist now, so a request of this session that starts later loads the new tokens.
            session.save().await?;
            slot.latest = Some((
                sealed,
                new_tokens.access_expires_at.unwrap_or(i64::MAX),
                new_user.clone(),
            ));
            slot.failures = 0;
            slot.retry_at = None;
            record(core, &new_user.username, Outcome::Success, None).await;
            tracing::info!(user = %new_user.username, "refreshed single sign-on tokens");
            Ok(Freshness::Fresh)
        }
        Err(RefreshError::Rejected(cause)) => {
            tracing::warn!(user = %user.username, %cause, "the identity provider refused the refresh; ending the session");
            slot.ended = Some("idp_refused");
            drop(slot);
            end(core, session, &binding, &user.username, "idp_refused").await
        }
        Err(RefreshError::Unavailable(cause)) => {
            if expired {
                tracing::warn!(user = %user.username, %cause, "provider unreachable and the access token expired; ending the session");
                slot.ended = Some("idp_unreachable");
                drop(slot);
                return end(core, session, &binding, &user.username, "idp_unreachable").await;
            }
            slot.failures += 1;
            let backoff = (Duration::seconds(5) * 2_i32.pow(slot.failures.min(6))).min(MAX_BACKOFF);
            slot.retry_at = Some(now + backoff);
            tracing::warn!(user = %user.username, %cause, "provider unreachable; keeping the session while its token is valid");
            Ok(Freshness::Fresh)
        }
    }
}

async fn end(
    core: &Core,
    session: &Session,
    binding: &str,
    username: &str,
    reason: &'static str,
) -> Result<Freshness, SessionError> {
    session.flush().await?;
    record(core, username, Outcome::Failure, Some(reason)).await;
    if let Err(err) = crate::store::sessions::revoke_binding(&core.db, binding, reason, core.clock.now()).await {
        tracing::error!(error = %err, "could not mark the ended session in the registry");
    }
    Ok(Freshness::Ended { reason })
}

async fn record(core: &Core, username: &str, outcome: Outcome, reason: Option<&str>) {
    let entry = AuditEvent {
        username: Some(username),
        method: Some("oidc"),
        reason,
        ..AuditEvent::new("refresh", outcome)
    };
    if let Err(err) = audit::record(&core.db, core.clock.now(), &entry).await {
        tracing::error!(error = %err, "could not write the audit log");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(issued: i64, expires: i64) -> StoredTokens {
        StoredTokens {
            id_token: String::new(),
            refresh_token: Some("r".into()),
            access_token: String::new(),
            access_issued_at: issued,
            access_expires_at: Some(expires),
            sid: None,
            subject: "s".into(),
        }
    }

    #[test]
    fn refresh_is_due_a_fifth_of_the_lifetime_early_at_most_five_minutes() {
        let at = |s: i64| OffsetDateTime::from_unix_timestamp(s).ok();
        assert_eq!(due_at(&tokens(0, 100)), at(80));
        assert_eq!(due_at(&tokens(0, 3600)), at(3600 - 300));
        let mut none = tokens(0, 100);
        none.access_expires_at = None;
        assert_eq!(due_at(&none), None);
    }
}
