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
        Self { event, outcome, reason: None, username: None, ip: None, method: None, detail: None }
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
    sqlx::query_as("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?1").bind(limit).fetch_all(db).await
}
