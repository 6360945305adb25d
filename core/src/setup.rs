//! First run: the one-time setup token and the creation of the first admin account.
use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::{
    crypto::write_private_file,
    password::{check_new_password, PasswordError, Passwords},
    store::users::{self, User},
};

pub const SETUP_TOKEN_FILE_NAME: &str = ".setup-token";

pub fn token_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SETUP_TOKEN_FILE_NAME)
}

/// The current setup token, creating one (mode 0600) when there is none yet. Restarts reuse it so
/// the link printed earlier keeps working.
pub fn ensure_token(data_dir: &Path) -> std::io::Result<SecretString> {
    let path = token_path(data_dir);
    match std::fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => Ok(SecretString::from(token.trim().to_owned())),
        Ok(_) => create_token(&path),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => create_token(&path),
        Err(err) => Err(err),
    }
}

fn create_token(path: &Path) -> std::io::Result<SecretString> {
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    write_private_file(path, token.as_bytes())?;
    Ok(SecretString::from(token))
}

/// Compares digests so the comparison time says nothing about how much of the token matched.
fn token_matches(data_dir: &Path, offered: &str) -> bool {
    let Ok(stored) = std::fs::read_to_string(token_path(data_dir)) else {
        return false;
    };
    let stored = stored.trim();
    !stored.is_empty() && Sha256::digest(stored.as_bytes()) == Sha256::digest(offered.trim().as_bytes())
}

pub fn check_username(username: &str) -> Result<(), String> {
    let trimmed = username.trim();
    if trimmed.is_empty() {
        return Err("the username is required".into());
    }
    if trimmed.chars().count() > 64 {
        return Err("the username must be at most 64 characters".into());
    }
    if trimmed.chars().any(char::is_control) {
        return Err("the username contains characters that are not allowed".into());
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct SetupForm {
    pub token: String,
    pub username: String,
    pub password: SecretString,
    pub confirm: SecretString,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("Pulse is already set up. Sign in instead.")]
    AlreadyDone,
    #[error("The setup token is missing or wrong. Use the link printed in Pulse's log, or the token in the data directory's .setup-token file.")]
    BadToken,
    #[error("{0}")]
    Invalid(FieldError),
    #[error("storage failed: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// A problem with one form field, for the page to show next to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

/// Creates the first admin when the token is right and no admin exists; removes the token.
pub async fn complete_setup(
    db: &sqlx::SqlitePool,
    passwords: &Passwords,
    data_dir: &Path,
    form: &SetupForm,
    now: time::OffsetDateTime,
) -> Result<User, SetupError> {
    if users::any_local_admin(db).await? {
        return Err(SetupError::AlreadyDone);
    }
    if !token_matches(data_dir, &form.token) {
        return Err(SetupError::BadToken);
    }
    check_username(&form.username).map_err(|message| {
        SetupError::Invalid(FieldError {
            field: "username",
            message,
        })
    })?;
    check_new_password(&form.password).map_err(|err| {
        SetupError::Invalid(FieldError {
            field: "password",
            message: capitalise(&err.to_string()),
        })
    })?;
    if form.password.expose_secret() != form.confirm.expose_secret() {
        return Err(SetupError::Invalid(FieldError {
            field: "confirm",
            message: "The two passwords do not match.".into(),
        }));
    }
    let hash = passwords.hash(&form.password).await.map_err(|err| match err {
        PasswordError::Hashing(text) => SetupError::Hashing(text),
        other => SetupError::Hashing(other.to_string()),
    })?;
    let user = users::create_first_admin(db, form.username.trim(), &hash, now)
        .await?
        .ok_or(SetupError::AlreadyDone)?;
    if let Err(err) = std::fs::remove_file(token_path(data_dir)) {
        tracing::warn!(error = %err, "could not remove the used setup token file");
    }
    Ok(user)
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::open_in_memory;

    fn form(token: &str, password: &str, confirm: &str) -> SetupForm {
        SetupForm {
            token: token.into(),
            username: "admin".into(),
            password: SecretString::from(password.to_owned()),
            confirm: SecretString::from(confirm.to_owned()),
        }
    }

    #[tokio::test]
    async fn setup_needs_the_token_and_works_once() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let db = open_in_memory().await?;
        let passwords = Passwords::new().await?;
        let token = ensure_token(dir.path())?;
        assert_eq!(
            ensure_token(dir.path())?.expose_secret(),
            token.expose_secret(),
            "reused"
        );
        let now = time::OffsetDateTime::now_utc();
        let good = "a long enough password";
        let wrong = complete_setup(&db, &passwords, dir.path(), &form("nope", good, good), now).await;
        assert!(matches!(wrong, Err(SetupError::BadToken)));
        let short = complete_setup(
            &db,
            &passwords,
            dir.path(),
            &form(token.expose_secret(), "short", "short"),
            now,
        )
        .await;
        assert!(matches!(
            short,
            Err(SetupError::Invalid(FieldError { field: "password", .. }))
        ));
        let mismatch = complete_setup(
            &db,
            &passwords,
            dir.path(),
            &form(token.expose_secret(), good, "other password!"),
            now,
        )
        .await;
        assert!(matches!(
            mismatch,
            Err(SetupError::Invalid(FieldError { field: "confirm", .. }))
        ));
        let user = complete_setup(
            &db,
            &passwords,
            dir.path(),
            &form(token.expose_secret(), good, good),
            now,
        )
        .await?;
        assert_eq!(user.username, "admin");
        assert!(!token_path(dir.path()).exists(), "the token is single-use");
        let again = complete_setup(
            &db,
            &passwords,
            dir.path(),
            &form(token.expose_secret(), good, good),
            now,
        )
        .await;
        assert!(matches!(again, Err(SetupError::AlreadyDone)));
        Ok(())
    }
}
