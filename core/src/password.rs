//! Password hashing with argon2id. Hashing is slow on purpose, so it runs on the blocking pool,
//! and checking an unknown username does the same work as a known one (no timing oracle).
use argon2::{
    password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Argon2,
};
use secrecy::{ExposeSecret, SecretString};

pub const MIN_PASSWORD_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_LEN} characters long")]
    TooShort,
    #[error("the password must be at most 1024 characters long")]
    TooLong,
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

/// Checks the rules a new password must meet.
pub fn check_new_password(password: &SecretString) -> Result<(), PasswordError> {
    let len = password.expose_secret().chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(PasswordError::TooShort);
    }
    if len > 1024 {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// Hashes and verifies passwords; holds a dummy hash to verify against for unknown users.
#[derive(Debug, Clone)]
pub struct Passwords {
    dummy_hash: String,
}

impl Passwords {
    /// Computes the dummy hash once at start-up (about as long as one sign-in).
    pub async fn new() -> Result<Self, PasswordError> {
        let dummy = SecretString::from("pulse-dummy-password-for-unknown-users");
        let dummy_hash = hash_blocking(dummy).await?;
        Ok(Self { dummy_hash })
    }

    pub async fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        hash_blocking(password.clone()).await
    }

    /// Verifies `password` against `stored` (a PHC string), or against the dummy hash when there is
    /// no such user, so both take the same time. Always `false` without a stored hash.
    pub async fn verify(&self, password: &SecretString, stored: Option<&str>) -> bool {
        let (hash, real) = match stored {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.clone(), false),
        };
        let password = password.clone();
        let matched = tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.expose_secret().as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        matched && real
    }
}

async fn hash_blocking(password: SecretString) -> Result<String, PasswordError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.expose_secret().as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|err| PasswordError::Hashing(err.to_string()))
    })
    .await
    .map_err(|err| PasswordError::Hashing(err.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_with_argon2id_and_verifies() -> Result<(), PasswordError> {
        let passwords = Passwords::new().await?;
        let secret = SecretString::from("correct horse battery");
        let hash = passwords.hash(&secret).await?;
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(!hash.contains("correct horse"));
        assert!(passwords.verify(&secret, Some(&hash)).await);
        assert!(
            !passwords
                .verify(&SecretString::from("wrong horse battery"), Some(&hash))
                .await
        );
        Ok(())
    }

    #[tokio::test]
    async fn unknown_user_never_verifies_even_with_the_dummy_password() -> Result<(), PasswordError> {
        let passwords = Passwords::new().await?;
        let dummy = SecretString::from("pulse-dummy-password-for-unknown-users");
        assert!(!passwords.verify(&dummy, None).await);
        assert!(!passwords.verify(&dummy, Some("not a phc string")).await);
        Ok(())
    }

    #[test]
    fn new_passwords_need_twelve_characters() {
        assert!(matches!(
            check_new_password(&SecretString::from("elevenchars")),
            Err(PasswordError::TooShort)
        ));
        assert!(check_new_password(&SecretString::from("twelve chars")).is_ok());
    }
}
