//! OpenID Connect single sign-on: settings, discovery and key caching, the authorization-code
//! flow with PKCE, ID token verification, claim mapping and policy. No HTTP server types here:
//! the server crate adapts `start_login` / `finish_login` to its routes.
pub mod backchannel;
pub mod claims;
pub mod flow;
pub mod probe;
pub mod provider;
pub mod refresh;
pub mod service;
pub mod settings;

use std::fmt;

/// The failure codes of SPEC §3, sent to the login page as `oidc_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OidcErrorCode {
    IdpError,
    InvalidState,
    ExchangeFailed,
    InvalidIdToken,
    IssuerMismatch,
    AudienceMismatch,
    TokenExpired,
    InvalidSignature,
    NonceMismatch,
    EmailRestricted,
    DomainRestricted,
    GroupRestricted,
    ProviderUnavailable,
    NotConfigured,
}

impl OidcErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OidcErrorCode::IdpError => "idp_error",
            OidcErrorCode::InvalidState => "invalid_state",
            OidcErrorCode::ExchangeFailed => "exchange_failed",
            OidcErrorCode::InvalidIdToken => "invalid_id_token",
            OidcErrorCode::IssuerMismatch => "issuer_mismatch",
            OidcErrorCode::AudienceMismatch => "audience_mismatch",
            OidcErrorCode::TokenExpired => "token_expired",
            OidcErrorCode::InvalidSignature => "invalid_signature",
            OidcErrorCode::NonceMismatch => "nonce_mismatch",
            OidcErrorCode::EmailRestricted => "email_restricted",
            OidcErrorCode::DomainRestricted => "domain_restricted",
            OidcErrorCode::GroupRestricted => "group_restricted",
            OidcErrorCode::ProviderUnavailable => "provider_unavailable",
            OidcErrorCode::NotConfigured => "not_configured",
        }
    }
}

impl fmt::Display for OidcErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed sign-in: the code for the browser, the cause for the log, and the provider's own
/// description when it sent one (shown escaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcFailure {
    pub code: OidcErrorCode,
    pub cause: String,
    pub idp_description: Option<String>,
}

impl OidcFailure {
    pub fn new(code: OidcErrorCode, cause: impl Into<String>) -> Self {
        Self {
            code,
            cause: cause.into(),
            idp_description: None,
        }
    }
}

impl fmt::Display for OidcFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.cause)
    }
}

/// How the current request reached Pulse (`https://pulse.example.com`): the public URL when one
/// is configured, else the request's scheme and host. The server puts it in each request's
/// extensions; the redirect URI is built from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestOrigin(pub String);
