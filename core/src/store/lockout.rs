//! Failed sign-in bookkeeping per account name and per client IP, and the lockout it leads to.
use sqlx::SqlitePool;
use time::{Duration, OffsetDateTime};

use super::{from_unix, unix};

pub const MAX_FAILURES: i64 = 5;
pub const LOCK_DURATION: Duration = Duration::minutes(15);
/// Failures older than this are forgotten.
pub const FAILURE_WINDOW: Duration = Duration::minutes(15);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Account,
    Ip,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Account => "account",
            Scope::Ip => "ip",
        }
    }
}

/// The normalised key of an account: usernames match case-insensitively.
pub fn account_key(username: &str) -> String {
    username.trim().to_lowercase()
}

/// When the account or the IP is locked, the later of the two unlock times.
pub async fn locked_until(
    db: &SqlitePool,
    account: &str,
    ip: &str,
    now: OffsetDateTime,
) -> Result<Option<OffsetDateTime>, sqlx::Error> {
    let until: Option<i64> = sqlx::query_scalar(
        "SELECT MAX(locked_until) FROM login_failures
         WHERE ((scope = 'account' AND subject = ?1) OR (scope = 'ip' AND subject = ?2)) AND locked_until > ?3",
    )
    .bind(account_key(account))
    .bind(ip)
    .bind(unix(now))
    .fetch_one(db)
    .await?;
    Ok(until.map(from_unix))
}

/// What a failed attempt leaves: attempts left before a lock, or the lock it caused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterFailure {
    AttemptsLeft(i64),
    LockedUntil(OffsetDateTime),
}

/// Counts one failure against the account and the IP; locks whichever reaches the limit.
pub async fn record_failure(
    db: &SqlitePool,
    account: &str,
    ip: &str,
    now: OffsetDateTime,
) -> Result<AfterFailure, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut least_left = MAX_FAILURES;
    let mut locked: Option<OffsetDateTime> = None;
    for (scope, subject) in [(Scope::Account, account_key(account)), (Scope::Ip, ip.to_owned())] {
        let failures: i64 = sqlx::query_scalar(
            "INSERT INTO login_failures (scope, subject, failures, window_start, locked_until)
             VALUES (?1, ?2, 1, ?3, NULL)
             ON CONFLICT (scope, subject) DO UPDATE SET
               failures = CASE WHEN window_start + ?4 <= ?3 OR locked_until <= ?3 THEN 1 ELSE failures + 1 END,
               window_start = CASE WHEN window_start + ?4 <= ?3 OR locked_until <= ?3 THEN ?3 ELSE window_start END,
               locked_until = CASE WHEN locked_until <= ?3 THEN NULL ELSE locked_until END
             RETURNING failures",
        )
        .bind(scope.as_str())
        .bind(&subject)
        .bind(unix(now))
        .bind(FAILURE_WINDOW.whole_seconds())
        .fetch_one(&mut *tx)
        .await?;
        if failures >= MAX_FAILURES {
            let until = now + LOCK_DURATION;
            sqlx::query("UPDATE login_failures SET locked_until = ?3 WHERE scope = ?1 AND subject = ?2")
                .bind(scope.as_str())
                .bind(&subject)
                .bind(unix(until))
                .execute(&mut *tx)
                .await?;
            locked = Some(until);
        }
        least_left = least_left.min(MAX_FAILURES - failures);
    }
    tx.commit().await?;
    Ok(match locked {
        Some(until) => AfterFailure::LockedUntil(until),
        None => AfterFailure::AttemptsLeft(least_left.max(0)),
    })
}

/// Forgets an account's failures (after a successful sign-in or an admin's reset).
pub async fn clear_account(db: &SqlitePool, account: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM login_failures WHERE scope = 'account' AND subject = ?1")
        .bind(account_key(account))
        .execute(db)
        .await?;
    Ok(())
}

/// Lifts every per-IP lock and forgets per-IP failures. An admin who locks their account with
/// wrong passwords locks their own address too, so lifting the account alone does not let them in.
pub async fn clear_ips(db: &SqlitePool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM login_failures WHERE scope = 'ip'")
        .execute(db)
        .await?
        .rows_affected())
}

/// Lifts every lock and forgets every failure: the recovery path of `pulse admin reset-lockout`.
pub async fn clear_all(db: &SqlitePool) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM login_failures")
        .execute(db)
        .await?
        .rows_affected())
}

/// Lifts one lock (admin's Unlock button).
pub async fn clear(db: &SqlitePool, scope: Scope, subject: &str) -> Result<bool, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM login_failures WHERE scope = ?1 AND subject = ?2")
            .bind(scope.as_str())
            .bind(subject)
            .execute(db)
            .await?
            .rows_affected()
            > 0,
    )
}

impl Scope {
    pub fn parse(text: &str) -> Option<Scope> {
        match text {
            "account" => Some(Scope::Account),
            "ip" => Some(Scope::Ip),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        self.as_str()
    }
}

/// A current lock, for the admin screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub scope: Scope,
    pub subject: String,
    pub until: OffsetDateTime,
}

pub async fn current_locks(db: &SqlitePool, now: OffsetDateTime) -> Result<Vec<Lock>, sqlx::Error> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT scope, subject, locked_until FROM login_failures WHERE locked_until > ?1 ORDER BY locked_until DESC",
    )
    .bind(unix(now))
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(scope, subject, until)| Lock {
            scope: if scope == "ip" { Scope::Ip } else { Scope::Account },
            subject,
            until: from_unix(until),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_in_memory;
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-12-01 10:00 UTC);

    #[tokio::test]
    async fn five_failures_lock_the_account_for_fifteen_minutes() -> Result<(), sqlx::Error> {
        let db = open_in_memory().await?;
        for left in [4, 3, 2, 1] {
            assert_eq!(
                record_failure(&db, "Admin", "10.0.0.1", T0).await?,
                AfterFailure::AttemptsLeft(left)
            );
        }
        assert_eq!(locked_until(&db, "admin", "10.0.0.9", T0).await?, None);
        let fifth = record_failure(&db, "admin", "10.0.0.1", T0).await?;
        assert_eq!(fifth, AfterFailure::LockedUntil(T0 + LOCK_DURATION));
        // Locked for the account from any IP, and for that IP with any account.
        assert!(locked_until(&db, "ADMIN", "10.0.0.9", T0 + Duration::minutes(14))
            .await?
            .is_some());
        assert!(locked_until(&db, "bob", "10.0.0.1", T0 + Duration::minutes(14))
            .await?
            .is_some());
        assert_eq!(
            locked_until(&db, "admin", "10.0.0.9", T0 + Duration::minutes(15)).await?,
            None
        );
        Ok(())
    }

    #[tokio::test]
    async fn counting_starts_afresh_after_the_lock_and_after_the_window() -> Result<(), sqlx::Error> {
        let db = open_in_memory().await?;
        for _ in 0..5 {
            record_failure(&db, "admin", "ip", T0).await?;
        }
        let after_lock = T0 + LOCK_DURATION;
        assert_eq!(
            record_failure(&db, "admin", "ip", after_lock).await?,
            AfterFailure::AttemptsLeft(4)
        );
        let much_later = after_lock + FAILURE_WINDOW;
        assert_eq!(
            record_failure(&db, "admin", "ip", much_later).await?,
            AfterFailure::AttemptsLeft(4)
        );
        Ok(())
    }

    #[tokio::test]
    async fn success_clears_the_account_and_reset_clears_all() -> Result<(), sqlx::Error> {
        let db = open_in_memory().await?;
        for _ in 0..3 {
            record_failure(&db, "admin", "ip", T0).await?;
        }
        clear_account(&db, "ADMIN").await?;
        // The IP keeps its count: a success on one account must not reset guessing at others.
        assert_eq!(
            record_failure(&db, "admin", "ip", T0).await?,
            AfterFailure::AttemptsLeft(1)
        );
        record_failure(&db, "x", "ip", T0).await?;
        assert_eq!(current_locks(&db, T0).await?.len(), 1);
        assert!(clear_all(&db).await? > 0);
        assert!(current_locks(&db, T0).await?.is_empty());
        Ok(())
    }
}
