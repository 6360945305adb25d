//! OpenID Connect Back-Channel Logout 1.0: the provider tells Pulse, server to server, that a
//! user's session ended. The logout token is checked like an ID token (RS256 signature with the
//! provider's keys, iss, aud, iat) plus its own rules (the logout event, sub or sid, no nonce, a
//! `jti` never seen before).
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use openidconnect::{core::CoreJwsSigningAlgorithm, JsonWebKey};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::provider::Discovered;

pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How old (or how far in the future) a logout token's `iat` may be.
const MAX_AGE: time::Duration = time::Duration::minutes(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutClaims {
    pub sub: Option<String>,
    pub sid: Option<String>,
    pub jti: String,
    pub iat: i64,
}

/// Why a logout token was refused; `UnknownKey` may be cured by fetching the keys again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutTokenError {
    UnknownKey,
    Invalid(String),
}

fn invalid(reason: impl Into<String>) -> LogoutTokenError {
    LogoutTokenError::Invalid(reason.into())
}

fn decode_part(part: &str) -> Result<Map<String, Value>, LogoutTokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| invalid("not base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(invalid("not a JSON object")),
    }
}

pub fn verify_logout_token(
    token: &str,
    discovered: &Discovered,
    client_id: &str,
    now: OffsetDateTime,
) -> Result<LogoutClaims, LogoutTokenError> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts[..] else {
        return Err(invalid("not a signed JWT (three parts expected)"));
    };
    let header = decode_part(header_b64)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(invalid("the algorithm must be RS256"));
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| invalid("signature not base64url"))?;
    let kid = header.get("kid").and_then(Value::as_str);
    let alg = CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256;
    let candidates: Vec<_> = discovered
        .metadata
        .jwks()
        .keys()
        .iter()
        .filter(|key| kid.is_none_or(|kid| key.key_id().is_some_and(|id| id.as_str() == kid)))
        .collect();
    if candidates.is_empty() {
        return Err(LogoutTokenError::UnknownKey);
    }
    if kid.is_none() && candidates.len() > 1 {
        return Err(invalid("no kid and several keys"));
    }
    let message = format!("{header_b64}.{payload_b64}");
    if !candidates
        .iter()
        .any(|key| key.verify_signature(&alg, message.as_bytes(), &signature).is_ok())
    {
        return Err(invalid("bad signature"));
    }

    let claims = decode_part(payload_b64)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    if text("iss").as_deref() != Some(discovered.metadata.issuer().as_str()) {
        return Err(invalid("wrong issuer"));
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == client_id,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(client_id)),
        _ => false,
    };
    if !audience_ok {
        return Err(invalid("wrong audience"));
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_i64)
        .ok_or_else(|| invalid("no iat"))?;
    if (now.unix_timestamp() - iat).abs() > MAX_AGE.whole_seconds() {
        return Err(invalid("iat too old or in the future"));
    }
    if let Some(exp) = claims.get("exp").and_then(Value::as_i64) {
        if exp < now.unix_timestamp() {
            return Err(invalid("expired"));
        }
    }
    let has_event = claims
        .get("events")
        .and_then(Value::as_object)
        .is_some_and(|events| events.get(LOGOUT_EVENT).is_some_and(Value::is_object));
    if !has_event {
        return Err(invalid("the events claim lacks the back-channel logout event"));
    }
    if claims.contains_key("nonce") {
        return Err(invalid("a logout token must not contain a nonce"));
    }
    let (sub, sid) = (text("sub"), text("sid"));
    if sub.is_none() && sid.is_none() {
        return Err(invalid("neither sub nor sid"));
    }
    let jti = text("jti").ok_or_else(|| invalid("no jti"))?;
    Ok(LogoutClaims { sub, sid, jti, iat })
}
