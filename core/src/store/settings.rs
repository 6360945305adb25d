//! Key/value settings stored in SQLite (UI-edited values; environment variables override them).
use sqlx::SqlitePool;
use time::OffsetDateTime;

use super::unix;

pub const HIDE_LOCAL_LOGIN: &str = "auth.hide_local_login";
/// A value sealed with the encryption key; proves at start-up that the key is the right one.
pub const KEY_CHECK: &str = "crypto.key_check";

pub async fn get(db: &SqlitePool, key: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = ?1")
        .bind(key)
        .fetch_optional(db)
        .await
}

pub async fn set<'e>(
    db: impl sqlx::SqliteExecutor<'e>,
    key: &str,
    value: &str,
    now: OffsetDateTime,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(value)
    .bind(unix(now))
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get_bool(db: &SqlitePool, key: &str) -> Result<Option<bool>, sqlx::Error> {
    Ok(get(db, key).await?.map(|value| value == "true"))
}
