//! The authorization-code flow: `start_login` builds the provider URL and the pending login that
//! the browser's session keeps; `finish_login` checks the callback against it, exchanges the code,
//! verifies the ID token and maps the user.
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use openidconnect::{
    core::{
        CoreAuthPrompt, CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdTokenVerifier,
        CoreJwsSigningAlgorithm,
    },
    AccessTokenHash, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    SignatureVerificationError, TokenResponse,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{
    claims::{map_and_authorize, needs_userinfo, MappedIdentity},
    provider::{Discovered, ProviderCache},
    settings::OidcSettings,
    OidcErrorCode, OidcFailure,
};

/// How long a started sign-in may take at the provider.
pub const PENDING_LIFETIME: time::Duration = time::Duration::minutes(10);
/// Clock skew tolerated on `iat`.
const ALLOWED_SKEW: time::Duration = time::Duration::minutes(5);

/// The effective configuration (stored settings with environment overrides) and the secret.
#[derive(Debug, Clone)]
pub struct ActiveConfig {
    pub settings: OidcSettings,
    pub client_secret: Option<SecretString>,
}

/// What the browser's session keeps between the redirect and the callback (stored encrypted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_to: String,
    pub redirect_uri: String,
    pub created_at: i64,
}

/// The query of `GET /api/oidc/callback`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// Tokens kept for the session (encrypted by the caller).
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub id_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub access_token: SecretString,
    pub access_expires_at: Option<OffsetDateTime>,
    pub sid: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CompletedLogin {
    pub issuer: String,
    pub identity: MappedIdentity,
    pub tokens: TokenSet,
    pub return_to: String,
}

fn failure(code: OidcErrorCode, cause: impl Into<String>) -> OidcFailure {
    OidcFailure::new(code, cause)
}

fn chrono_time(at: OffsetDateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(at.unix_timestamp(), 0).unwrap_or_default()
}

pub(crate) fn client(
    discovered: &Discovered,
    config: &ActiveConfig,
    redirect_uri: &str,
) -> Result<
    CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    >,
    OidcFailure,
> {
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|err| {
        failure(
            OidcErrorCode::NotConfigured,
            format!("invalid redirect URL {redirect_uri}: {err}"),
        )
    })?;
    Ok(CoreClient::from_provider_metadata(
        discovered.metadata.clone(),
        ClientId::new(config.settings.client_id.clone()),
        config
            .client_secret
            .as_ref()
            .map(|s| ClientSecret::new(s.expose_secret().to_owned())),
    )
    .set_redirect_uri(redirect))
}

/// Starts a sign-in: the URL to send the browser to, and what its session must remember.
pub async fn start_login(
    http: &reqwest::Client,
    cache: &ProviderCache,
    config: &ActiveConfig,
    redirect_uri: &str,
    return_to: &str,
    now: OffsetDateTime,
) -> Result<(String, PendingLogin), OidcFailure> {
    let discovered = cache.get(http, &config.settings.issuer_url, now).await?;
    let client = client(&discovered, config, redirect_uri)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in config.settings.scopes.iter().filter(|s| s.as_str() != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    if let Some(prompt) = config.settings.effective_prompt() {
        let prompt = match prompt {
            "none" => CoreAuthPrompt::None,
            "login" => CoreAuthPrompt::Login,
            "select_account" => CoreAuthPrompt::SelectAccount,
            _ => CoreAuthPrompt::Consent,
        };
        request = request.add_prompt(prompt);
    }
    let (url, state, nonce) = request.url();
    let pending = PendingLogin {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        pkce_verifier: verifier.secret().clone(),
        return_to: return_to.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        created_at: now.unix_timestamp(),
    };
    Ok((url.to_string(), pending))
}

/// Finishes a sign-in. `pending` is what the browser's session held for the callback's `state`
/// (already removed from it: single use), or `None` when it held nothing for that state.
pub async fn finish_login(
    http: &reqwest::Client,
    cache: &ProviderCache,
    config: &ActiveConfig,
    pending: Option<PendingLogin>,
    params: &CallbackParams,
    now: OffsetDateTime,
) -> Result<CompletedLogin, OidcFailure> {
    let Some(pending) = pending else {
        if let Some(error) = &params.error {
            return Err(failure(
                OidcErrorCode::InvalidState,
                format!("provider error {error} for an unknown state"),
            ));
        }
        return Err(failure(
            OidcErrorCode::InvalidState,
            "no sign-in was started in this browser for this state",
        ));
    };
    if now.unix_timestamp() - pending.created_at > PENDING_LIFETIME.whole_seconds() {
        return Err(failure(
            OidcErrorCode::InvalidState,
            "the sign-in took longer than 10 minutes",
        ));
    }
    if let Some(error) = &params.error {
        let mut refused = failure(OidcErrorCode::IdpError, format!("the provider answered error={error}"));
        refused.idp_description = Some(params.error_description.clone().unwrap_or_else(|| error.clone()));
        return Err(refused);
    }
    let settings = &config.settings;
    if let Some(iss) = &params.iss {
        // RFC 9207: a callback naming another issuer is a mix-up attack.
        if iss != &settings.issuer_url {
            return Err(failure(
                OidcErrorCode::IssuerMismatch,
                format!("callback iss {iss} is not {}", settings.issuer_url),
            ));
        }
    }
    let code = params
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| failure(OidcErrorCode::InvalidState, "the callback carries no code"))?;

    let mut discovered = cache.get(http, &settings.issuer_url, now).await?;
    let client = client(&discovered, config, &pending.redirect_uri)?;
    let request = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .map_err(|err| {
            failure(
                OidcErrorCode::NotConfigured,
                format!("the provider has no token endpoint: {err}"),
            )
        })?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()));
    let response = request.request_async(http).await.map_err(|err| match err {
        RequestTokenError::ServerResponse(body) => {
            let kind = match body.error() {
                CoreErrorResponseType::InvalidClient => "invalid_client (check the client ID and secret)".to_owned(),
                CoreErrorResponseType::InvalidGrant => "invalid_grant".to_owned(),
                other => format!("{other:?}"),
            };
            failure(
                OidcErrorCode::ExchangeFailed,
                format!("token endpoint refused the code: {kind}"),
            )
        }
        RequestTokenError::Request(err) => failure(
            OidcErrorCode::ProviderUnavailable,
            format!("token endpoint unreachable: {err}"),
        ),
        // Parse covers both a token response whose ID token does not parse (a missing `iat`
        // or `sub`) and an error status whose body is no OAuth error, such as a proxy's 500 page.
        RequestTokenError::Parse(err, body) => {
            let has_id_token = serde_json::from_slice::<Value>(&body)
                .ok()
                .is_some_and(|v| v.get("id_token").is_some());
            if has_id_token {
                failure(
                    OidcErrorCode::InvalidIdToken,
                    format!("the ID token is not valid: {err}"),
                )
            } else {
                failure(
                    OidcErrorCode::ExchangeFailed,
                    format!("the token endpoint's answer is not a token response: {err}"),
                )
            }
        }
        RequestTokenError::Other(err) => failure(OidcErrorCode::ExchangeFailed, format!("token request failed: {err}")),
    })?;
    let id_token = response
        .id_token()
        .ok_or_else(|| failure(OidcErrorCode::InvalidIdToken, "the token response has no id_token"))?;
    let nonce = Nonce::new(pending.nonce.clone());

    let claims = match verify_id_token(id_token, response.access_token(), &discovered, settings, &nonce, now) {
        Err(KeyProblem::Unknown(first)) => {
            // The provider may have rotated its keys since they were cached.
            match cache.refresh_keys(http, now).await {
                Some(refreshed) => {
                    discovered = refreshed;
                    verify_id_token(id_token, response.access_token(), &discovered, settings, &nonce, now)
                        .map_err(KeyProblem::into_failure)?
                }
                None => return Err(first),
            }
        }
        other => other.map_err(KeyProblem::into_failure)?,
    };

    // The signature is verified over exactly these bytes, so reading every claim from them is safe.
    let mut all_claims = raw_payload(&id_token.to_string())
        .ok_or_else(|| failure(OidcErrorCode::InvalidIdToken, "the ID token payload is not JSON"))?;
    let subject = claims.subject().as_str().to_owned();
    if needs_userinfo(&all_claims, settings) {
        if let Some(endpoint) = discovered.metadata.userinfo_endpoint().map(|u| u.url().to_string()) {
            let info = fetch_userinfo(http, &endpoint, response.access_token().secret()).await?;
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(failure(
                    OidcErrorCode::InvalidIdToken,
                    "userinfo sub differs from the ID token's sub",
                ));
            }
            for (key, value) in info {
                all_claims.entry(key).or_insert(value);
            }
        }
    }
    let identity = map_and_authorize(&all_claims, settings).map_err(|code| {
        failure(
            code,
            format!(
                "policy refused {}",
                all_claims.get("sub").and_then(Value::as_str).unwrap_or("?")
            ),
        )
    })?;
    let access_expires_at = response
        .expires_in()
        .map(|d| now + time::Duration::seconds(d.as_secs().min(i64::MAX as u64) as i64));
    let sid = all_claims.get("sid").and_then(Value::as_str).map(str::to_owned);
    Ok(CompletedLogin {
        issuer: settings.issuer_url.clone(),
        identity,
        tokens: TokenSet {
            id_token: SecretString::from(id_token.to_string()),
            refresh_token: response.refresh_token().map(|t| SecretString::from(t.secret().clone())),
            access_token: SecretString::from(response.access_token().secret().clone()),
            access_expires_at,
            sid,
        },
        return_to: pending.return_to,
    })
}

/// A verification failure, telling apart the ones fresh keys might cure.
enum KeyProblem {
    Unknown(OidcFailure),
    Final(OidcFailure),
}

impl KeyProblem {
    fn into_failure(self) -> OidcFailure {
        match self {
            KeyProblem::Unknown(f) | KeyProblem::Final(f) => f,
        }
    }
}

/// Signature (RS256 only), iss, aud, azp, exp, iat, nonce, and at_hash when present.
fn verify_id_token(
    id_token: &openidconnect::core::CoreIdToken,
    access_token: &openidconnect::AccessToken,
    discovered: &Discovered,
    settings: &OidcSettings,
    nonce: &Nonce,
    now: OffsetDateTime,
) -> Result<openidconnect::core::CoreIdTokenClaims, KeyProblem> {
    let verifier = verifier(discovered, settings, now);
    let claims = match id_token.claims(&verifier, nonce) {
        Ok(claims) => claims.clone(),
        Err(err) => {
            let rejected = failure(verification_code(&err), format!("ID token rejected: {err}"));
            return Err(match err {
                ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey | SignatureVerificationError::CryptoError(_),
                ) => KeyProblem::Unknown(rejected),
                _ => KeyProblem::Final(rejected),
            });
        }
    };
    // openidconnect leaves `azp` unchecked; Core §3.1.3.7 step 5 wants it to name this client.
    if let Some(azp) = claims.authorized_party() {
        if azp.as_str() != settings.client_id {
            let cause = format!("azp {} is not this client", azp.as_str());
            return Err(KeyProblem::Final(failure(OidcErrorCode::AudienceMismatch, cause)));
        }
    }
    if let Some(expected) = claims.access_token_hash() {
        let final_failure = |code, cause: String| KeyProblem::Final(failure(code, cause));
        let alg = id_token
            .signing_alg()
            .map_err(|e| final_failure(OidcErrorCode::InvalidSignature, e.to_string()))?;
        let key = id_token
            .signing_key(&verifier)
            .map_err(|e| final_failure(OidcErrorCode::InvalidSignature, e.to_string()))?;
        let actual = AccessTokenHash::from_token(access_token, alg, key)
            .map_err(|e| final_failure(OidcErrorCode::InvalidIdToken, e.to_string()))?;
        if &actual != expected {
            return Err(final_failure(
                OidcErrorCode::InvalidIdToken,
                "at_hash does not match the access token".into(),
            ));
        }
    }
    Ok(claims)
}

fn verifier<'a>(
    discovered: &'a Discovered,
    settings: &'a OidcSettings,
    now: OffsetDateTime,
) -> CoreIdTokenVerifier<'a> {
    // A public-client verifier never accepts HMAC signatures, and only RS256 is allowed: no
    // `none`, no HS256 keyed with the client secret.
    CoreIdTokenVerifier::new_public_client(
        ClientId::new(settings.client_id.clone()),
        discovered.metadata.issuer().clone(),
        discovered.metadata.jwks().clone(),
    )
    .set_allowed_algs(vec![CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256])
    .set_time_fn(move || chrono_time(now))
    .set_issue_time_verifier_fn(move |iat| {
        if iat > chrono_time(now + ALLOWED_SKEW) {
            Err(format!("issued in the future ({iat})"))
        } else if iat < chrono_time(now - time::Duration::days(1)) {
            Err(format!("issued too long ago ({iat})"))
        } else {
            Ok(())
        }
    })
}

fn verification_code(err: &ClaimsVerificationError) -> OidcErrorCode {
    match err {
        ClaimsVerificationError::InvalidIssuer(_) => OidcErrorCode::IssuerMismatch,
        ClaimsVerificationError::InvalidAudience(_) => OidcErrorCode::AudienceMismatch,
        ClaimsVerificationError::Expired(_) => OidcErrorCode::TokenExpired,
        ClaimsVerificationError::InvalidNonce(_) => OidcErrorCode::NonceMismatch,
        ClaimsVerificationError::SignatureVerification(_) => OidcErrorCode::InvalidSignature,
        _ => OidcErrorCode::InvalidIdToken,
    }
}

fn raw_payload(jwt: &str) -> Option<Map<String, Value>> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice::<Value>(&bytes).ok()?.as_object().cloned()
}

/// Calls userinfo with the access token in the Authorization header (never in the query).
async fn fetch_userinfo(
    http: &reqwest::Client,
    endpoint: &str,
    access_token: &str,
) -> Result<Map<String, Value>, OidcFailure> {
    let response = http
        .get(endpoint)
        .bearer_auth(access_token)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| {
            failure(
                OidcErrorCode::ProviderUnavailable,
                format!("userinfo unreachable: {err}"),
            )
        })?;
    if !response.status().is_success() {
        return Err(failure(
            OidcErrorCode::ExchangeFailed,
            format!("userinfo answered HTTP {}", response.status()),
        ));
    }
    let value: Value = response
        .json()
        .await
        .map_err(|err| failure(OidcErrorCode::InvalidIdToken, format!("userinfo is not JSON: {err}")))?;
    value
        .as_object()
        .cloned()
        .ok_or_else(|| failure(OidcErrorCode::InvalidIdToken, "userinfo is not a JSON object"))
}
