//! Pulse's sign-in core: configuration, accounts, passwords, lockout, sessions, encryption and
//! storage. It knows nothing of Leptos or HTTP; the `server` and `app` crates adapt it.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod auth;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod oidc;
pub mod password;
pub mod return_to;
pub mod rotate;
pub mod session;
pub mod session_refresh;
pub mod setup;
pub mod sso_admin;
pub mod store;

use std::sync::Arc;

use secrecy::SecretString;
use sqlx::SqlitePool;

use crate::{
    clock::Clock,
    config::Config,
    crypto::{Cipher, KeyError, KeyOrigin},
    password::Passwords,
    store::{lockout, settings, users},
};

pub use secrecy;

/// Everything the adapters need, built once at start-up and shared.
#[derive(Debug)]
pub struct Core {
    pub config: Config,
    pub db: SqlitePool,
    pub cipher: Cipher,
    pub passwords: Passwords,
    pub clock: Arc<dyn Clock>,
    pub oidc: oidc::service::OidcService,
    pub refresh: session_refresh::RefreshCoordinator,
    /// Bindings of revoked sessions that might still be presented, with the reason; checked on
    /// every request.
    revoked: std::sync::RwLock<std::collections::HashMap<String, String>>,
    /// The stored "hide local login form" toggle, read on every login page and status request;
    /// written only through [`Core::store_hide_local_login`].
    hide_stored: std::sync::atomic::AtomicBool,
    /// Set once a local administrator exists (accounts are never deleted, so it never unsets).
    local_admin_exists: std::sync::atomic::AtomicBool,
}

/// What start-up found, for the operator's log.
#[derive(Debug)]
pub struct StartupReport {
    pub key_origin: KeyOrigin,
    /// Set when no admin exists yet: the token the `/setup` link must carry.
    pub setup_token: Option<SecretString>,
    pub bootstrap_admin: Option<BootstrapOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootstrapOutcome {
    Created(String),
    PasswordUpdated(String),
    Unchanged(String),
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the database in {dir}: {source}")]
    Database { dir: String, source: sqlx::Error },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("the data directory holds encrypted data but the encryption key is missing: restore {file} or set PULSE_ENCRYPTION_KEY to the key it held. Pulse will not create a new key over existing data.")]
    KeyMissing { file: String },
    #[error("the encryption key does not match the one that encrypted this data directory's secrets: restore the original {file} or set PULSE_ENCRYPTION_KEY to it.")]
    KeyMismatch { file: String },
    #[error("storage failed during start-up: {0}")]
    Storage(#[from] sqlx::Error),
    #[error("password hashing failed during start-up: {0}")]
    Password(#[from] password::PasswordError),
    #[error("cannot write the setup token: {0}")]
    SetupToken(std::io::Error),
}

impl Core {
    /// Opens the store, loads (or creates) the key and proves it matches the stored data, applies
    /// `PULSE_AUTH_USER`/`PULSE_AUTH_PASS`, and prepares the setup token when no admin exists.
    pub async fn start(config: Config, clock: Arc<dyn Clock>) -> Result<(Core, StartupReport), StartError> {
        let db = store::open(&config.data_dir)
            .await
            .map_err(|source| StartError::Database {
                dir: config.data_dir.display().to_string(),
                source,
            })?;
        let key_file = config.data_dir.join(crypto::KEY_FILE_NAME).display().to_string();
        let key_check = settings::get(&db, settings::KEY_CHECK).await?;
        let (key, key_origin) =
            crypto::load_key(&config.data_dir, config.encryption_key.as_ref(), key_check.is_none())?
                .ok_or(StartError::KeyMissing { file: key_file.clone() })?;
        let cipher = Cipher::new(&key);
        match key_check {
            Some(sealed) => {
                cipher
                    .open(&sealed, settings::KEY_CHECK.as_bytes())
                    .map_err(|_| StartError::KeyMismatch { file: key_file })?;
            }
            None => {
                let sealed = cipher.seal(b"pulse", settings::KEY_CHECK.as_bytes());
                settings::set(&db, settings::KEY_CHECK, &sealed, clock.now()).await?;
            }
        }
        let passwords = Passwords::new().await?;
        let oidc = oidc::service::OidcService::load(&db, &cipher, config.oidc_env.clone()).await?;
        let revoked = store::sessions::revoked_bindings(&db, clock.now())
            .await?
            .into_iter()
            .collect();
        let hide_stored = settings::get_bool(&db, settings::HIDE_LOCAL_LOGIN)
            .await?
            .unwrap_or(false);
        let core = Core {
            config,
            db,
            cipher,
            passwords,
            clock,
            oidc,
            refresh: Default::default(),
            revoked: std::sync::RwLock::new(revoked),
            hide_stored: hide_stored.into(),
            local_admin_exists: false.into(),
        };
        let bootstrap_admin = core.apply_bootstrap_admin().await?;
        let setup_token = if users::any_local_admin(&core.db).await? {
            None
        } else {
            Some(setup::ensure_token(&core.config.data_dir).map_err(StartError::SetupToken)?)
        };
        Ok((
            core,
            StartupReport {
                key_origin,
                setup_token,
                bootstrap_admin,
            },
        ))
    }

    /// Creates or updates the admin named by the environment; also lifts its lockout, which makes
    /// the environment the recovery path for a locked-out or forgotten admin.
    async fn apply_bootstrap_admin(&self) -> Result<Option<BootstrapOutcome>, StartError> {
        let Some(admin) = &self.config.bootstrap_admin else {
            return Ok(None);
        };
        let stored = users::password_hash_of(&self.db, &admin.username).await?;
        let outcome = match &stored {
            Some(hash) if self.passwords.verify(&admin.password, Some(hash)).await => {
                BootstrapOutcome::Unchanged(admin.username.clone())
            }
            _ => {
                let hash = self.passwords.hash(&admin.password).await?;
                users::upsert_local_admin(&self.db, &admin.username, &hash, self.clock.now()).await?;
                if stored.is_some() {
                    BootstrapOutcome::PasswordUpdated(admin.username.clone())
                } else {
                    BootstrapOutcome::Created(admin.username.clone())
                }
            }
        };
        lockout::clear_account(&self.db, &admin.username).await?;
        // The failures that locked the account also locked the address they came from: usually
        // the admin's own. Without this the recovery path still answers "locked" for 15 minutes.
        lockout::clear_ips(&self.db).await?;
        Ok(Some(outcome))
    }

    /// Makes the sessions with these bindings end at their next request; `reason` is what the
    /// registry recorded (e.g. `backchannel_logout`, `revoked_by_user`).
    pub fn revoke_bindings(&self, bindings: impl IntoIterator<Item = String>, reason: &str) {
        let mut revoked = self.revoked.write().unwrap_or_else(|p| p.into_inner());
        for binding in bindings {
            self.refresh.forget(&binding);
            revoked.insert(binding, reason.to_owned());
        }
    }

    /// Why the session with this binding was revoked, if it was.
    pub fn revocation_reason(&self, binding: &str) -> Option<String> {
        self.revoked
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(binding)
            .cloned()
    }

    /// Whether the local form is hidden (environment or stored toggle). Hiding never applies
    /// while SSO is not usable, so nobody can be locked out by it.
    pub async fn hide_local_login(&self) -> Result<bool, sqlx::Error> {
        let requested = self
            .config
            .hide_local_login
            .unwrap_or_else(|| self.stored_hide_local_login());
        Ok(requested && self.oidc.active().is_some())
    }

    /// The stored toggle (what the environment may override).
    pub fn stored_hide_local_login(&self) -> bool {
        self.hide_stored.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Stores the toggle; the in-memory copy changes only once the database has it.
    pub async fn store_hide_local_login(&self, hide: bool) -> Result<(), sqlx::Error> {
        let value = if hide { "true" } else { "false" };
        settings::set(&self.db, settings::HIDE_LOCAL_LOGIN, value, self.clock.now()).await?;
        self.hide_stored.store(hide, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// Whether a local administrator exists (else the setup page is offered). Asked on every
    /// login page; once true it stays true, so only the first "no" costs a query each time.
    pub async fn has_local_admin(&self) -> Result<bool, sqlx::Error> {
        use std::sync::atomic::Ordering;
        if self.local_admin_exists.load(Ordering::SeqCst) {
            return Ok(true);
        }
        let exists = users::any_local_admin(&self.db).await?;
        if exists {
            self.local_admin_exists.store(true, Ordering::SeqCst);
        }
        Ok(exists)
    }
}
