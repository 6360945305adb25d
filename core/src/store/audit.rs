//! The audit log: sign-ins, failures with their reason, sign-outs, settings changes.
use sqlx::SqlitePool;
use time::OffsetDateTime;

use super::{from_unix, unix};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent<'a> {
    pub event: &'a str,
    pub outcome: Outcome,
    pub reason: Option<&'a str>,
    pub username: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub method: Option<&'a str>,
    pub detail: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl<'a> AuditEvent<'a> {
    pub fn new(event: &'a str, outcome: Outcome) -> Self {
        Self {
            event,
            outcome,
            reason: None,
            username: None,
            ip: None,
            method: None,
            detail: None,
        }
    }
}

pub async fn record(db: &SqlitePool, at: OffsetDateTime, entry: &AuditEvent<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (at, event, outcome, reason, username, ip, method, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .bind(unix(at))
    .bind(entry.event)
    .bind(match entry.outcome {
        Outcome::Success => "success",
        Outcome::Failure => "failure",
    })
    .bind(entry.reason)
    .bind(entry.username)
    .bind(entry.ip)
    .bind(entry.method)
    .bind(entry.detail)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub username: Option<String>,
    pub ip: Option<String>,
    pub method: Option<String>,
    pub detail: Option<String>,
}

impl AuditRow {
    pub fn time(&self) -> OffsetDateTime {
        from_unix(self.at)
    }
}

pub async fn recent(db: &SqlitePool, limit: i64) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?1")
        .bind(limit)
        .fetch_all(db)
        .await
}

/// A page of the log, newest first, optionally filtered by event type and (exact) username.
pub async fn search(
    db: &SqlitePool,
    event: Option<&str>,
    username: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT * FROM audit_log
         WHERE (?1 IS NULL OR event = ?1) AND (?2 IS NULL OR username = ?2 COLLATE NOCASE)
         ORDER BY id DESC LIMIT ?3 OFFSET ?4",
    )
    .bind(event)
    .bind(username)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}

/// Keeps the newest `keep` entries (the retention limit).
pub async fn prune(db: &SqlitePool, keep: i64) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM audit_log WHERE id <= (SELECT id FROM audit_log ORDER BY id DESC LIMIT 1 OFFSET ?1)")
            .bind(keep)
            .execute(db)
            .await?
            .rows_affected(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_in_memory;

    #[tokio::test]
    async fn search_filters_pages_and_prunes() -> Result<(), sqlx::Error> {
        let db = open_in_memory().await?;
        let now = OffsetDateTime::now_utc();
        for (event, user) in [
            ("login", "alice"),
            ("logout", "alice"),
            ("login", "bob"),
            ("login", "Alice"),
        ] {
            record(
                &db,
                now,
                &AuditEvent {
                    username: Some(user),
                    ..AuditEvent::new(event, Outcome::Success)
                },
            )
            .await?;
        }
        assert_eq!(search(&db, Some("login"), None, 10, 0).await?.len(), 3);
        let alice = search(&db, None, Some("alice"), 10, 0).await?;
        assert_eq!(alice.len(), 3, "usernames match case-insensitively");
        assert!(alice[0].id > alice[1].id, "newest first");
        assert_eq!(search(&db, None, None, 2, 2).await?.len(), 2);
        assert_eq!(prune(&db, 2).await?, 2);
        assert_eq!(recent(&db, 10).await?.len(), 2);
        Ok(())
    }
}
