//! The session registry: which sessions exist, whose they are, and which were revoked.
use sqlx::SqlitePool;
use time::OffsetDateTime;

use super::unix;

#[derive(Debug, Clone, Default)]
pub struct NewSession<'a> {
    pub binding: &'a str,
    pub user_id: i64,
    pub username: &'a str,
    pub method: &'a str,
    pub oidc_issuer: Option<&'a str>,
    pub oidc_subject: Option<&'a str>,
    pub oidc_sid: Option<&'a str>,
    pub has_refresh: bool,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

pub async fn register(
    db: &SqlitePool,
    new: &NewSession<'_>,
    now: OffsetDateTime,
    expires: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO session_registry (binding, user_id, username, method, oidc_issuer, oidc_subject, oidc_sid,
             has_refresh, ip, user_agent, created_at, last_seen_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)",
    )
    .bind(new.binding)
    .bind(new.user_id)
    .bind(new.username)
    .bind(new.method)
    .bind(new.oidc_issuer)
    .bind(new.oidc_subject)
    .bind(new.oidc_sid)
    .bind(new.has_refresh)
    .bind(new.ip)
    .bind(new.user_agent.map(|ua| ua.chars().take(300).collect::<String>()))
    .bind(unix(now))
    .bind(unix(expires))
    .execute(db)
    .await?;
    Ok(())
}

pub async fn touch(db: &SqlitePool, binding: &str, now: OffsetDateTime) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE session_registry SET last_seen_at = ?2 WHERE binding = ?1")
        .bind(binding)
        .bind(unix(now))
        .execute(db)
        .await?;
    Ok(())
}

/// Marks sessions revoked; returns the bindings that were revoked now.
async fn revoke_where(
    db: &SqlitePool,
    condition: &str,
    a: &str,
    b: Option<&str>,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, sqlx::Error> {
    let sql = format!(
        "UPDATE session_registry SET revoked_at = ?3, revoked_reason = ?4
         WHERE revoked_at IS NULL AND {condition} RETURNING binding"
    );
    sqlx::query_scalar(&sql)
        .bind(a)
        .bind(b)
        .bind(unix(now))
        .bind(reason)
        .fetch_all(db)
        .await
}

pub async fn revoke_binding(
    db: &SqlitePool,
    binding: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, sqlx::Error> {
    revoke_where(db, "binding = ?1 AND ?2 IS NULL", binding, None, reason, now).await
}

pub async fn revoke_by_sid(
    db: &SqlitePool,
    issuer: &str,
    sid: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, sqlx::Error> {
    revoke_where(db, "oidc_issuer = ?1 AND oidc_sid = ?2", issuer, Some(sid), reason, now).await
}

pub async fn revoke_by_subject(
    db: &SqlitePool,
    issuer: &str,
    subject: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, sqlx::Error> {
    revoke_where(
        db,
        "oidc_issuer = ?1 AND oidc_subject = ?2",
        issuer,
        Some(subject),
        reason,
        now,
    )
    .await
}

/// Revokes every session of a user except `keep` (after a password change).
pub async fn revoke_others(
    db: &SqlitePool,
    user_id: i64,
    keep: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE session_registry SET revoked_at = ?3, revoked_reason = ?4
         WHERE revoked_at IS NULL AND user_id = ?1 AND binding <> ?2 RETURNING binding",
    )
    .bind(user_id)
    .bind(keep)
    .bind(unix(now))
    .bind(reason)
    .fetch_all(db)
    .await
}

/// Revoked sessions that could still be presented (not yet expired), with the reason: loaded at
/// start-up.
pub async fn revoked_bindings(db: &SqlitePool, now: OffsetDateTime) -> Result<Vec<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT binding, COALESCE(revoked_reason, 'revoked') FROM session_registry
         WHERE revoked_at IS NOT NULL AND expires_at > ?1",
    )
    .bind(unix(now))
    .fetch_all(db)
    .await
}

/// Records a logout token's `jti`; `false` when it was seen before (a replay).
pub async fn remember_logout_jti(
    db: &SqlitePool,
    jti: &str,
    expires: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM seen_logout_tokens WHERE expires_at < ?1")
        .bind(unix(now))
        .execute(db)
        .await?;
    let inserted =
        sqlx::query("INSERT INTO seen_logout_tokens (jti, expires_at) VALUES (?1, ?2) ON CONFLICT (jti) DO NOTHING")
            .bind(jti)
            .bind(unix(expires))
            .execute(db)
            .await?
            .rows_affected();
    Ok(inserted == 1)
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRow {
    pub binding: String,
    pub user_id: i64,
    pub username: String,
    pub method: String,
    pub has_refresh: bool,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

/// Live sessions, newest first; one user's, or everyone's when `user_id` is `None`.
pub async fn active(
    db: &SqlitePool,
    user_id: Option<i64>,
    now: OffsetDateTime,
) -> Result<Vec<SessionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT binding, user_id, username, method, has_refresh, ip, user_agent, created_at, last_seen_at, expires_at
         FROM session_registry
         WHERE revoked_at IS NULL AND expires_at > ?1 AND (?2 IS NULL OR user_id = ?2)
         ORDER BY last_seen_at DESC",
    )
    .bind(unix(now))
    .bind(user_id)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open_in_memory, users};

    #[tokio::test]
    async fn sessions_are_revoked_by_binding_sid_and_subject() -> Result<(), sqlx::Error> {
        let db = open_in_memory().await?;
        let now = OffsetDateTime::now_utc();
        let later = now + time::Duration::days(1);
        let user = users::upsert_oidc(&db, "iss", "sub-1", "alice", None, users::Role::Admin, now).await?;
        for (binding, sid) in [("b1", "sid-1"), ("b2", "sid-1"), ("b3", "sid-2")] {
            let new = NewSession {
                binding,
                user_id: user.id,
                username: "alice",
                method: "oidc",
                oidc_issuer: Some("iss"),
                oidc_subject: Some("sub-1"),
                oidc_sid: Some(sid),
                ..NewSession::default()
            };
            register(&db, &new, now, later).await?;
        }
        assert_eq!(active(&db, Some(user.id), now).await?.len(), 3);
        let mut by_sid = revoke_by_sid(&db, "iss", "sid-1", "backchannel", now).await?;
        by_sid.sort();
        assert_eq!(by_sid, ["b1", "b2"]);
        assert!(revoke_by_sid(&db, "other-iss", "sid-2", "backchannel", now)
            .await?
            .is_empty());
        assert_eq!(
            revoke_by_subject(&db, "iss", "sub-1", "backchannel", now).await?,
            ["b3"]
        );
        assert_eq!(revoked_bindings(&db, now).await?.len(), 3);
        assert!(active(&db, None, now).await?.is_empty());
        assert!(remember_logout_jti(&db, "j1", later, now).await?);
        assert!(
            !remember_logout_jti(&db, "j1", later, now).await?,
            "a replayed jti is refused"
        );
        Ok(())
    }
}
