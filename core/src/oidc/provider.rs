//! The identity provider as Pulse sees it: one shared HTTP client (no redirects, timeouts, extra
//! CA roots), the discovery document and JWKS, cached, with a rate-limited JWKS refresh for
//! rotated keys.
use std::time::Duration;

use openidconnect::{core::CoreProviderMetadata, JsonWebKeySet};
use time::OffsetDateTime;
use tokio::sync::{Mutex, RwLock};

use super::{OidcErrorCode, OidcFailure};

/// How long a discovery document is trusted before it is fetched again.
pub const DISCOVERY_TTL: time::Duration = time::Duration::hours(1);
/// At most one JWKS refresh per this interval (a forged `kid` must not make Pulse hammer the IdP).
pub const JWKS_REFRESH_INTERVAL: time::Duration = time::Duration::seconds(30);

/// Builds the HTTP client used for every call to the provider.
pub fn http_client(ca_bundle: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        // Following redirects would let a hostile discovery document point Pulse anywhere.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("pulse/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path).map_err(|err| format!("cannot read OIDC_CA_BUNDLE {}: {err}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|err| format!("OIDC_CA_BUNDLE {} is not a PEM bundle: {err}", path.display()))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|err| format!("cannot build the HTTP client: {err}"))
}

/// Discovery metadata with its keys.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub metadata: CoreProviderMetadata,
    /// RP-initiated logout endpoint (not part of the core metadata type).
    pub end_session_endpoint: Option<String>,
    pub fetched_at: OffsetDateTime,
}

/// The cache of one provider's metadata.
#[derive(Debug, Default)]
pub struct ProviderCache {
    current: RwLock<Option<Discovered>>,
    last_jwks_refresh: Mutex<Option<OffsetDateTime>>,
}

/// Explains an issuer mismatch, calling out the trailing-slash case (authentik's issuers end in /).
pub fn issuer_mismatch_message(configured: &str, discovered: &str) -> String {
    if configured.trim_end_matches('/') == discovered.trim_end_matches('/') {
        format!(
            "the provider's issuer is \"{discovered}\" but Pulse is configured with \"{configured}\": they differ only in the trailing slash. Set the issuer URL to exactly \"{discovered}\"."
        )
    } else {
        format!(
            "the provider says its issuer is \"{discovered}\", not the configured \"{configured}\". Check the issuer URL."
        )
    }
}

/// The discovery document as fetched, before any check: its metadata and end-session endpoint.
pub async fn fetch_discovery_document(
    http: &reqwest::Client,
    issuer: &str,
) -> Result<(CoreProviderMetadata, Option<String>), OidcFailure> {
    let url = discovery_url(issuer);
    let unavailable = |cause: String| OidcFailure::new(OidcErrorCode::ProviderUnavailable, cause);
    let response = http
        .get(&url)
        .send()
        .await
        .map_err(|err| unavailable(format!("discovery at {url} failed: {}", error_chain(&err))))?;
    if !response.status().is_success() {
        return Err(unavailable(format!(
            "discovery at {url} answered HTTP {}",
            response.status()
        )));
    }
    let body = response
        .bytes()
        .await
        .map_err(|err| unavailable(format!("discovery at {url}: {err}")))?;
    let metadata: CoreProviderMetadata = serde_json::from_slice(&body)
        .map_err(|err| unavailable(format!("the discovery document at {url} is not valid: {err}")))?;
    let end_session_endpoint = serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|doc| {
        doc.get("end_session_endpoint")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    });
    Ok((metadata, end_session_endpoint))
}

/// Where the discovery document of `issuer` lives.
pub fn discovery_url(issuer: &str) -> String {
    format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'))
}

/// An error with its causes ("error sending request: connection refused"), for people to read.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let line = cause.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = cause.source();
    }
    text
}

/// Fetches and checks the discovery document, then the JWKS.
pub async fn discover(http: &reqwest::Client, issuer: &str, now: OffsetDateTime) -> Result<Discovered, OidcFailure> {
    let (metadata, end_session_endpoint) = fetch_discovery_document(http, issuer).await?;
    let discovered_issuer = metadata.issuer().as_str().to_owned();
    if discovered_issuer != issuer {
        return Err(OidcFailure::new(
            OidcErrorCode::IssuerMismatch,
            issuer_mismatch_message(issuer, &discovered_issuer),
        ));
    }
    let jwks = fetch_jwks(http, &metadata).await?;
    Ok(Discovered {
        metadata: metadata.set_jwks(jwks),
        end_session_endpoint,
        fetched_at: now,
    })
}

pub(crate) async fn fetch_jwks(
    http: &reqwest::Client,
    metadata: &CoreProviderMetadata,
) -> Result<openidconnect::core::CoreJsonWebKeySet, OidcFailure> {
    JsonWebKeySet::fetch_async(metadata.jwks_uri(), http)
        .await
        .map_err(|err| {
            OidcFailure::new(
                OidcErrorCode::ProviderUnavailable,
                format!(
                    "fetching the provider's keys from {} failed: {err}",
                    metadata.jwks_uri().as_str()
                ),
            )
        })
}

impl ProviderCache {
    /// The cached metadata, fetched when missing or older than the TTL.
    pub async fn get(
        &self,
        http: &reqwest::Client,
        issuer: &str,
        now: OffsetDateTime,
    ) -> Result<Discovered, OidcFailure> {
        if let Some(found) = self.current.read().await.as_ref() {
            if now - found.fetched_at < DISCOVERY_TTL {
                return Ok(found.clone());
            }
        }
        let fresh = discover(http, issuer, now).await?;
        *self.current.write().await = Some(fresh.clone());
        Ok(fresh)
    }

    /// Fetches the JWKS again (keys rotated) unless that happened within the refresh interval.
    /// Returns the updated metadata, or `None` when rate-limited or nothing is cached.
    pub async fn refresh_keys(&self, http: &reqwest::Client, now: OffsetDateTime) -> Option<Discovered> {
        {
            let mut last = self.last_jwks_refresh.lock().await;
            if last.is_some_and(|at| now - at < JWKS_REFRESH_INTERVAL) {
                tracing::warn!("not refreshing the provider's keys again so soon");
                return None;
            }
            *last = Some(now);
        }
        let cached = self.current.read().await.clone()?;
        match fetch_jwks(http, &cached.metadata).await {
            Ok(jwks) => {
                let updated = Discovered {
                    metadata: cached.metadata.set_jwks(jwks),
                    ..cached
                };
                *self.current.write().await = Some(updated.clone());
                tracing::info!("refreshed the provider's signing keys");
                Some(updated)
            }
            Err(failure) => {
                tracing::warn!(cause = %failure.cause, "could not refresh the provider's keys");
                None
            }
        }
    }

    /// The cached metadata without fetching.
    pub async fn snapshot(&self) -> Option<Discovered> {
        self.current.read().await.clone()
    }

    /// Forgets everything (settings changed).
    pub async fn clear(&self) {
        *self.current.write().await = None;
        *self.last_jwks_refresh.lock().await = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slash_difference_is_explained() {
        let text = issuer_mismatch_message(
            "https://auth.example.com/application/o/pulse",
            "https://auth.example.com/application/o/pulse/",
        );
        assert!(text.contains("trailing slash"), "{text}");
        let other = issuer_mismatch_message("https://a.example.com", "https://b.example.com");
        assert!(!other.contains("trailing slash"));
    }
}
