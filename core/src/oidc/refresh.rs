//! One refresh-token grant: the request, the checks OpenID Connect Core §12.2 asks of a refreshed
//! ID token (same iss, sub, aud), and the policy evaluated again on the new claims.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use openidconnect::{
    core::{CoreClient, CoreErrorResponseType, CoreIdTokenVerifier, CoreJwsSigningAlgorithm},
    ClaimsVerificationError, ClientId, ClientSecret, Nonce, OAuth2TokenResponse, RefreshToken, RequestTokenError,
    SignatureVerificationError, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{
    claims::{map_and_authorize, needs_userinfo, MappedIdentity},
    flow::ActiveConfig,
    provider::{Discovered, ProviderCache},
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshError {
    /// The provider (or the policy) said no: the session must end now.
    Rejected(String),
    /// The provider could not be asked: try again later; the session lives while its token does.
    Unavailable(String),
}

#[derive(Debug, Clone)]
pub struct Refreshed {
    pub access_token: SecretString,
    pub access_expires_at: Option<OffsetDateTime>,
    /// The rotated refresh token, if the provider sent one (else the old one stays valid).
    pub refresh_token: Option<SecretString>,
    pub id_token: Option<SecretString>,
    /// The identity from the new claims, when any claims came back.
    pub identity: Option<MappedIdentity>,
}

fn chrono_time(at: OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(at.unix_timestamp(), 0).unwrap_or_default()
}

pub async fn refresh(
    http: &reqwest::Client,
    cache: &ProviderCache,
    config: &ActiveConfig,
    refresh_token: &SecretString,
    subject: &str,
    now: OffsetDateTime,
) -> Result<Refreshed, RefreshError> {
    let settings = &config.settings;
    let discovered = cache
        .get(http, &settings.issuer_url, now)
        .await
        .map_err(|failure| RefreshError::Unavailable(failure.cause))?;
    let client = CoreClient::from_provider_metadata(
        discovered.metadata.clone(),
        ClientId::new(settings.client_id.clone()),
        config
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
    );
    let token = RefreshToken::new(refresh_token.expose_secret().to_owned());
    let response = client
        .exchange_refresh_token(&token)
        .map_err(|err| RefreshError::Rejected(format!("no token endpoint: {err}")))?
        .request_async(http)
        .await
        .map_err(|err| match err {
            RequestTokenError::ServerResponse(body) => match body.error() {
                CoreErrorResponseType::InvalidGrant
                | CoreErrorResponseType::InvalidClient
                | CoreErrorResponseType::UnauthorizedClient
                | CoreErrorResponseType::InvalidRequest
                | CoreErrorResponseType::InvalidScope => RefreshError::Rejected(format!("{:?}", body.error())),
                other => RefreshError::Unavailable(format!("{other:?}")),
            },
            // 5xx and unreadable answers arrive here: not a verdict on the session.
            RequestTokenError::Request(err) => RefreshError::Unavailable(err.to_string()),
            RequestTokenError::Parse(err, _) => RefreshError::Unavailable(format!("unreadable answer: {err}")),
            RequestTokenError::Other(err) => RefreshError::Unavailable(err),
        })?;

    let mut claims: Option<Map<String, Value>> = None;
    if let Some(id_token) = response.id_token() {
        // A refreshed ID token carries no new nonce; iss and aud are checked by the verifier.
        let verified_subject = |keys: &Discovered| {
            let verifier = CoreIdTokenVerifier::new_public_client(
                ClientId::new(settings.client_id.clone()),
                keys.metadata.issuer().clone(),
                keys.metadata.jwks().clone(),
            )
            .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256])
            .set_time_fn(move || chrono_time(now));
            id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())).map(|c| {
                (
                    c.subject().as_str().to_owned(),
                    c.authorized_party().map(|azp| azp.as_str().to_owned()),
                )
            })
        };
        let verified = match verified_subject(&discovered) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey | SignatureVerificationError::CryptoError(_),
            )) => {
                // The provider may have rotated its signing key since the keys were cached (as at
                // sign-in); the refetch is rate-limited, and another request may just have done it.
                let keys = match cache.refresh_keys(http, now).await {
                    Some(fresh) => fresh,
                    None => cache.snapshot().await.unwrap_or(discovered.clone()),
                };
                verified_subject(&keys)
            }
            other => other,
        }
        .map_err(|err| RefreshError::Rejected(format!("refreshed ID token rejected: {err}")))?;
        let (verified_subject, authorized_party) = verified;
        if verified_subject != subject {
            return Err(RefreshError::Rejected(
                "the refreshed ID token names another subject".into(),
            ));
        }
        // As at sign-in (Core §3.1.3.7 step 5): an `azp` must name this client.
        if let Some(azp) = authorized_party.filter(|azp| *azp != settings.client_id) {
            return Err(RefreshError::Rejected(format!(
                "the refreshed ID token was issued to another party (azp {azp})"
            )));
        }
        claims = id_token
            .to_string()
            .split('.')
            .nth(1)
            .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|v| v.as_object().cloned());
    }
    let access_token = response.access_token().secret().clone();
    let needs_info = claims.as_ref().is_none_or(|c| needs_userinfo(c, settings));
    if needs_info {
        if let Some(endpoint) = discovered.metadata.userinfo_endpoint() {
            let answer = http
                .get(endpoint.url().as_str())
                .bearer_auth(&access_token)
                .send()
                .await
                .map_err(|err| RefreshError::Unavailable(format!("userinfo: {err}")))?;
            if answer.status().is_client_error() {
                return Err(RefreshError::Rejected(format!("userinfo answered {}", answer.status())));
            }
            if let Ok(Value::Object(info)) = answer.json::<Value>().await {
                if info.get("sub").and_then(Value::as_str) != Some(subject) {
                    return Err(RefreshError::Rejected("userinfo names another subject".into()));
                }
                let merged = claims.get_or_insert_with(Map::new);
                for (key, value) in info {
                    merged.entry(key).or_insert(value);
                }
            }
        }
    }
    let identity = match &claims {
        Some(claims) => Some(
            map_and_authorize(claims, settings)
                .map_err(|code| RefreshError::Rejected(format!("policy no longer met: {code}")))?,
        ),
        None => None,
    };
    Ok(Refreshed {
        access_token: SecretString::from(access_token),
        access_expires_at: response
            .expires_in()
            .map(|d| now + time::Duration::seconds(d.as_secs().min(i64::MAX as u64) as i64)),
        refresh_token: response.refresh_token().map(|t| SecretString::from(t.secret().clone())),
        id_token: response.id_token().map(|t| SecretString::from(t.to_string())),
        identity,
    })
}
