//! `pulse rotate-key`: re-encrypts every stored secret under a new key. Run with Pulse stopped;
//! sessions keep working afterwards because their sealed tokens are re-sealed, not dropped.
use std::str::FromStr;

use secrecy::SecretBox;
use serde_json::Value;
use sqlx::SqlitePool;
use tower_sessions::{session::Id, SessionStore};
use tower_sessions_sqlx_store::SqliteStore;

use crate::{crypto::Cipher, store::settings};

/// The stored values sealed with the key, by setting name (the name is also the associated data).
const SEALED_SETTINGS: &[&str] = &[
    settings::KEY_CHECK,
    "oidc.client_secret",
    crate::sso_admin::VERIFIED_KEY,
];

#[derive(Debug, Default, PartialEq, Eq)]
pub struct RotationReport {
    pub settings: usize,
    pub sessions: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error("storage: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("session store: {0}")]
    Sessions(String),
    #[error("a stored secret ({0}) does not open with the current key; nothing was changed")]
    WrongKey(String),
}

fn reseal(old: &Cipher, new: &Cipher, sealed: &str, aad: &[u8], what: &str) -> Result<String, RotateError> {
    let plaintext = old
        .open(sealed, aad)
        .map_err(|_| RotateError::WrongKey(what.to_owned()))?;
    Ok(new.seal(&plaintext, aad))
}

/// Re-seals settings and session secrets from `old` to `new` in one transaction for the settings;
/// sessions are rewritten one by one (each is independent and stays valid under either outcome
/// only once the new key is in place, so run this with Pulse stopped).
pub async fn rotate(db: &SqlitePool, old: &Cipher, new: &Cipher) -> Result<RotationReport, RotateError> {
    let mut report = RotationReport::default();
    let mut resealed_settings = Vec::new();
    for name in SEALED_SETTINGS {
        if let Some(sealed) = settings::get(db, name).await? {
            resealed_settings.push((*name, reseal(old, new, &sealed, name.as_bytes(), name)?));
        }
    }

    let store = SqliteStore::new(db.clone());
    store.migrate().await?;
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM tower_sessions")
        .fetch_all(db)
        .await?;
    let mut records = Vec::new();
    for id in ids {
        let Ok(id) = Id::from_str(&id) else { continue };
        let Some(mut record) = store
            .load(&id)
            .await
            .map_err(|e| RotateError::Sessions(e.to_string()))?
        else {
            continue;
        };
        let mut changed = false;
        let binding = record
            .data
            .get("pulse.binding")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if let (Some(binding), Some(Value::String(sealed))) = (&binding, record.data.get("pulse.oidc.tokens")) {
            let aad = format!("session-tokens:{binding}");
            let fresh = reseal(old, new, sealed, aad.as_bytes(), "session tokens")?;
            record.data.insert("pulse.oidc.tokens".into(), Value::String(fresh));
            changed = true;
        }
        if let Some(Value::Array(pending)) = record.data.get_mut("pulse.oidc.pending") {
            for item in pending.iter_mut() {
                let state = item.get("state").and_then(Value::as_str).map(str::to_owned);
                if let (Some(state), Some(Value::String(sealed))) = (state, item.get("sealed")) {
                    let aad = format!("oidc.pending:{state}");
                    let fresh = reseal(old, new, sealed, aad.as_bytes(), "pending sign-in")?;
                    item["sealed"] = Value::String(fresh);
                    changed = true;
                }
            }
        }
        if changed {
            records.push(record);
        }
    }

    // Everything opened with the old key: only now write anything.
    let mut tx = db.begin().await?;
    for (name, sealed) in &resealed_settings {
        sqlx::query("UPDATE settings SET value = ?2 WHERE key = ?1")
            .bind(name)
            .bind(sealed)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    report.settings = resealed_settings.len();
    for record in &records {
        store
            .save(record)
            .await
            .map_err(|e| RotateError::Sessions(e.to_string()))?;
    }
    report.sessions = records.len();
    Ok(report)
}

/// A fresh random key.
pub fn generate_key() -> SecretBox<[u8; 32]> {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut key);
    SecretBox::new(Box::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_in_memory;
    use tower_sessions::session::Record;

    #[tokio::test]
    async fn every_secret_moves_to_the_new_key() -> Result<(), Box<dyn std::error::Error>> {
        let db = open_in_memory().await?;
        let (old, new) = (Cipher::new(&generate_key()), Cipher::new(&generate_key()));
        let now = time::OffsetDateTime::now_utc();
        settings::set(
            &db,
            settings::KEY_CHECK,
            &old.seal(b"pulse", settings::KEY_CHECK.as_bytes()),
            now,
        )
        .await?;
        settings::set(
            &db,
            "oidc.client_secret",
            &old.seal(b"s3cret", b"oidc.client_secret"),
            now,
        )
        .await?;
        let store = SqliteStore::new(db.clone());
        store.migrate().await?;
        let mut record = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: now + time::Duration::hours(1),
        };
        record.data.insert("pulse.binding".into(), Value::String("b1".into()));
        record.data.insert(
            "pulse.oidc.tokens".into(),
            Value::String(old.seal(b"{}", b"session-tokens:b1")),
        );
        store.create(&mut record).await?;

        let report = rotate(&db, &old, &new).await?;
        assert_eq!(
            report,
            RotationReport {
                settings: 2,
                sessions: 1
            }
        );
        let secret = settings::get(&db, "oidc.client_secret").await?.unwrap_or_default();
        assert_eq!(
            new.open(&secret, b"oidc.client_secret").ok().as_deref(),
            Some(&b"s3cret"[..])
        );
        assert!(old.open(&secret, b"oidc.client_secret").is_err());
        let reloaded = store.load(&record.id).await?.ok_or("session lost")?;
        let sealed = reloaded
            .data
            .get("pulse.oidc.tokens")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(new.open(sealed, b"session-tokens:b1").is_ok());

        // Rotating again with the wrong "old" key changes nothing.
        assert!(matches!(rotate(&db, &old, &new).await, Err(RotateError::WrongKey(_))));
        assert!(new
            .open(
                &settings::get(&db, "oidc.client_secret").await?.unwrap_or_default(),
                b"oidc.client_secret"
            )
            .is_ok());
        Ok(())
    }
}
