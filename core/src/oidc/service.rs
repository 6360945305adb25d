//! SSO as the rest of Pulse uses it: the effective settings (stored, overridden by environment),
//! the HTTP client and provider cache, and sign-in completion (user record, audit).
use std::sync::{Arc, RwLock};

use sqlx::SqlitePool;
use time::OffsetDateTime;

use super::{
    flow::{self, ActiveConfig, CallbackParams, CompletedLogin, PendingLogin},
    provider::{self, ProviderCache},
    settings::{self, OidcEnv, OidcSettings},
    OidcErrorCode, OidcFailure,
};
use crate::{crypto::Cipher, setup::FieldError};

#[derive(Debug)]
struct Loaded {
    active: Option<Arc<ActiveConfig>>,
    http: reqwest::Client,
    problems: Vec<FieldError>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackchannelError {
    #[error("invalid logout token: {0}")]
    Invalid(String),
    #[error("the provider's keys are unavailable: {0}")]
    Unavailable(String),
    #[error("storage failed: {0}")]
    Storage(#[from] sqlx::Error),
}

#[derive(Debug)]
pub struct OidcService {
    env: OidcEnv,
    loaded: RwLock<Arc<Loaded>>,
    cache: ProviderCache,
}

/// What the login page shows for SSO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoButton {
    pub id: &'static str,
    pub display_name: String,
    pub login_url: &'static str,
}

impl OidcService {
    /// Reads the stored settings, overlays the environment and validates. Invalid settings leave
    /// SSO disabled (local sign-in keeps working) and are reported, naming the variable.
    pub async fn load(db: &SqlitePool, cipher: &Cipher, env: OidcEnv) -> Result<OidcService, sqlx::Error> {
        let loaded = Self::compute(db, cipher, &env).await?;
        Ok(OidcService {
            env,
            loaded: RwLock::new(Arc::new(loaded)),
            cache: ProviderCache::default(),
        })
    }

    async fn compute(db: &SqlitePool, cipher: &Cipher, env: &OidcEnv) -> Result<Loaded, sqlx::Error> {
        let mut effective = settings::load_stored(db).await?;
        let mut problems = env.apply(&mut effective);
        problems.extend(effective.validate());
        let client_secret = match env.client_secret() {
            Some(secret) => Some(secret.clone()),
            None => settings::load_client_secret(db, cipher).await?,
        };
        let ca_bundle = Some(effective.ca_bundle.trim())
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from);
        let http = match provider::http_client(ca_bundle.as_deref()) {
            Ok(client) => client,
            Err(message) => {
                problems.push(FieldError {
                    field: "ca_bundle",
                    message,
                });
                reqwest::Client::new()
            }
        };
        for problem in &problems {
            let variable = env
                .managing(problem.field)
                .map(|v| format!(" ({v})"))
                .unwrap_or_default();
            tracing::error!(
                "single sign-on is disabled: {}{variable}: {}",
                problem.field,
                problem.message
            );
        }
        let active = (effective.enabled && problems.is_empty()).then(|| {
            Arc::new(ActiveConfig {
                settings: effective,
                client_secret,
            })
        });
        Ok(Loaded { active, http, problems })
    }

    /// Re-reads settings after they changed; cached discovery for the old ones is dropped.
    pub async fn reload(&self, db: &SqlitePool, cipher: &Cipher) -> Result<(), sqlx::Error> {
        let loaded = Self::compute(db, cipher, &self.env).await?;
        self.cache.clear().await;
        *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
        Ok(())
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.loaded.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn env(&self) -> &OidcEnv {
        &self.env
    }

    /// The configuration in force, when SSO is enabled and valid.
    pub fn active(&self) -> Option<Arc<ActiveConfig>> {
        self.loaded().active.clone()
    }

    pub fn problems(&self) -> Vec<FieldError> {
        self.loaded().problems.clone()
    }

    pub fn buttons(&self) -> Vec<SsoButton> {
        self.active()
            .map(|active| SsoButton {
                id: "oidc",
                display_name: active.settings.display_name.clone(),
                login_url: "/api/oidc/login",
            })
            .into_iter()
            .collect()
    }

    /// The redirect URI to send: the configured one, else `<base>/api/oidc/callback`.
    pub fn redirect_uri(active: &ActiveConfig, base_url: &str) -> String {
        if active.settings.redirect_url.is_empty() {
            format!("{}/api/oidc/callback", base_url.trim_end_matches('/'))
        } else {
            active.settings.redirect_url.clone()
        }
    }

    pub async fn start_login(
        &self,
        base_url: &str,
        return_to: &str,
        now: OffsetDateTime,
    ) -> Result<(String, PendingLogin), OidcFailure> {
        let loaded = self.loaded();
        let active = loaded
            .active
            .clone()
            .ok_or_else(|| OidcFailure::new(OidcErrorCode::NotConfigured, "SSO is not enabled"))?;
        let redirect_uri = Self::redirect_uri(&active, base_url);
        flow::start_login(&loaded.http, &self.cache, &active, &redirect_uri, return_to, now).await
    }

    pub async fn finish_login(
        &self,
        pending: Option<PendingLogin>,
        params: &CallbackParams,
        now: OffsetDateTime,
    ) -> Result<CompletedLogin, OidcFailure> {
        let loaded = self.loaded();
        let active = loaded
            .active
            .clone()
            .ok_or_else(|| OidcFailure::new(OidcErrorCode::NotConfigured, "SSO is not enabled"))?;
        flow::finish_login(&loaded.http, &self.cache, &active, pending, params, now).await
    }

    /// Where to send the browser after the local session ended: the provider's end-session URL
    /// with `id_token_hint`, `post_logout_redirect_uri`, `client_id` and `state`; `None` when SSO
    /// is off or the provider offers no end-session endpoint.
    pub async fn end_session_url(
        &self,
        id_token: Option<&secrecy::SecretString>,
        post_logout_redirect_uri: &str,
        now: OffsetDateTime,
    ) -> Option<String> {
        let loaded = self.loaded();
        let active = loaded.active.clone()?;
        let endpoint = if active.settings.logout_url.is_empty() {
            match self.cache.get(&loaded.http, &active.settings.issuer_url, now).await {
                Ok(discovered) => discovered.end_session_endpoint?,
                Err(failure) => {
                    tracing::warn!(cause = %failure.cause, "cannot reach the provider to end its session");
                    return None;
                }
            }
        } else {
            active.settings.logout_url.clone()
        };
        let mut url = url::Url::parse(&endpoint).ok()?;
        {
            let mut query = url.query_pairs_mut();
            if let Some(token) = id_token {
                query.append_pair("id_token_hint", secrecy::ExposeSecret::expose_secret(token));
            }
            query.append_pair("post_logout_redirect_uri", post_logout_redirect_uri);
            query.append_pair("client_id", &active.settings.client_id);
            query.append_pair("state", openidconnect::CsrfToken::new_random().secret());
        }
        Some(url.to_string())
    }

    /// One refresh-token grant with the configuration in force.
    pub async fn refresh(
        &self,
        refresh_token: &secrecy::SecretString,
        subject: &str,
        now: OffsetDateTime,
    ) -> Result<super::refresh::Refreshed, super::refresh::RefreshError> {
        let loaded = self.loaded();
        let active = loaded
            .active
            .clone()
            .ok_or_else(|| super::refresh::RefreshError::Rejected("single sign-on is no longer enabled".into()))?;
        super::refresh::refresh(&loaded.http, &self.cache, &active, refresh_token, subject, now).await
    }

    /// Handles a back-channel logout token: verified, its `jti` remembered, and every matching
    /// session revoked (by `sid`, else by `sub`). Returns the revoked bindings.
    pub async fn backchannel_logout(
        &self,
        db: &SqlitePool,
        token: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, BackchannelError> {
        use super::backchannel::{verify_logout_token, LogoutTokenError};
        let loaded = self.loaded();
        let active = loaded
            .active
            .clone()
            .ok_or(BackchannelError::Invalid("single sign-on is not enabled".into()))?;
        let settings = &active.settings;
        let discovered = self
            .cache
            .get(&loaded.http, &settings.issuer_url, now)
            .await
            .map_err(|f| BackchannelError::Unavailable(f.cause))?;
        let claims = match verify_logout_token(token, &discovered, &settings.client_id, now) {
            Err(LogoutTokenError::UnknownKey) => {
                let refreshed = self.cache.refresh_keys(&loaded.http, now).await;
                let retry = refreshed
                    .as_ref()
                    .map(|d| verify_logout_token(token, d, &settings.client_id, now));
                match retry {
                    Some(Ok(claims)) => claims,
                    _ => return Err(BackchannelError::Invalid("no key matches the logout token".into())),
                }
            }
            Err(LogoutTokenError::Invalid(reason)) => return Err(BackchannelError::Invalid(reason)),
            Ok(claims) => claims,
        };
        let keep_until = now + time::Duration::minutes(20);
        if !crate::store::sessions::remember_logout_jti(db, &claims.jti, keep_until, now).await? {
            return Err(BackchannelError::Invalid(
                "this logout token was already used (jti replay)".into(),
            ));
        }
        let issuer = &settings.issuer_url;
        let revoked = match (&claims.sid, &claims.sub) {
            (Some(sid), _) => crate::store::sessions::revoke_by_sid(db, issuer, sid, "backchannel_logout", now).await?,
            (None, Some(sub)) => {
                crate::store::sessions::revoke_by_subject(db, issuer, sub, "backchannel_logout", now).await?
            }
            (None, None) => Vec::new(),
        };
        Ok(revoked)
    }

    /// The settings as stored and overridden, for the admin screen (no secret).
    pub async fn effective_settings(&self, db: &SqlitePool) -> Result<OidcSettings, sqlx::Error> {
        let mut effective = settings::load_stored(db).await?;
        let _ = self.env.apply(&mut effective);
        Ok(effective)
    }
}
