//! The signed-in user as kept in the server-side session (tower-sessions), behind typed accessors
//! so nothing else reads or writes session keys by hand.
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use tower_sessions::{session::Error as SessionError, Expiry, Session};

use crate::store::users::{Role, User};

const USER_KEY: &str = "pulse.user";

pub const DEFAULT_LIFETIME: Duration = Duration::hours(24);
pub const REMEMBER_ME_LIFETIME: Duration = Duration::days(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMethod {
    Password,
    Oidc,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Oidc => "oidc",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionUser {
    pub user_id: i64,
    pub username: String,
    pub email: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub role: Role,
    pub auth_method: AuthMethod,
    pub signed_in_at: i64,
}

impl SessionUser {
    pub fn local(user: &User, now: OffsetDateTime) -> Self {
        SessionUser {
            user_id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            groups: Vec::new(),
            role: user.role,
            auth_method: AuthMethod::Password,
            signed_in_at: now.unix_timestamp(),
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

pub async fn current_user(session: &Session) -> Result<Option<SessionUser>, SessionError> {
    session.get::<SessionUser>(USER_KEY).await
}

/// Starts a signed-in session under a new id (no session fixation) with an absolute lifetime.
/// Returns the session's random binding: its key in the session registry and the associated
/// data of its sealed tokens.
pub async fn sign_in(
    session: &Session,
    user: &SessionUser,
    lifetime: Duration,
    now: OffsetDateTime,
) -> Result<String, SessionError> {
    session.cycle_id().await?;
    let binding = random_binding();
    session.insert(USER_KEY, user).await?;
    session.insert(BINDING_KEY, &binding).await?;
    session.set_expiry(Some(Expiry::AtDateTime(now + lifetime)));
    Ok(binding)
}

/// The session's binding, when signed in.
pub async fn binding(session: &Session) -> Result<Option<String>, SessionError> {
    session.get::<String>(BINDING_KEY).await
}

/// Deletes the session server-side and clears the cookie.
pub async fn sign_out(session: &Session) -> Result<(), SessionError> {
    session.flush().await
}

const PENDING_KEY: &str = "pulse.oidc.pending";
const TOKENS_KEY: &str = "pulse.oidc.tokens";
const BINDING_KEY: &str = "pulse.binding";
/// Sign-ins one browser may have in flight at once (several tabs); the oldest is dropped beyond.
const MAX_PENDING: usize = 8;

/// A started SSO sign-in, sealed: the PKCE verifier and nonce are secrets even at rest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SealedPending {
    state: String,
    created_at: i64,
    sealed: String,
}

fn pending_aad(state: &str) -> Vec<u8> {
    format!("oidc.pending:{state}").into_bytes()
}

/// Remembers a started sign-in in this browser's session.
pub async fn remember_pending(
    session: &Session,
    cipher: &crate::crypto::Cipher,
    pending: &crate::oidc::flow::PendingLogin,
) -> Result<(), SessionError> {
    let mut all: Vec<SealedPending> = session.get(PENDING_KEY).await?.unwrap_or_default();
    let json = serde_json::to_vec(pending).unwrap_or_default();
    all.push(SealedPending {
        state: pending.state.clone(),
        created_at: pending.created_at,
        sealed: cipher.seal(&json, &pending_aad(&pending.state)),
    });
    all.sort_by_key(|p| std::cmp::Reverse(p.created_at));
    all.truncate(MAX_PENDING);
    session.insert(PENDING_KEY, all).await
}

/// Removes and returns the sign-in started in this browser for `state` (single use).
pub async fn take_pending(
    session: &Session,
    cipher: &crate::crypto::Cipher,
    state: &str,
) -> Result<Option<crate::oidc::flow::PendingLogin>, SessionError> {
    let mut all: Vec<SealedPending> = session.get(PENDING_KEY).await?.unwrap_or_default();
    let Some(index) = all.iter().position(|p| p.state == state) else {
        return Ok(None);
    };
    let found = all.remove(index);
    session.insert(PENDING_KEY, all).await?;
    Ok(cipher
        .open(&found.sealed, &pending_aad(state))
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok()))
}

/// The SSO tokens as stored: sealed with the session's random binding as associated data, so a
/// ciphertext copied into another session does not open.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredTokens {
    pub id_token: String,
    pub refresh_token: Option<String>,
    pub access_token: String,
    pub access_issued_at: i64,
    pub access_expires_at: Option<i64>,
    pub sid: Option<String>,
    pub subject: String,
}

fn tokens_aad(binding: &str) -> Vec<u8> {
    format!("session-tokens:{binding}").into_bytes()
}

/// Starts an SSO session: new id, the user, and the token set sealed.
/// How long an SSO session with a refresh token may live, however often the provider refreshes it.
pub const SSO_ABSOLUTE_LIFETIME: Duration = Duration::days(30);

/// Starts an SSO session: new id, the user, and the token set sealed. With a refresh token the
/// session lives as long as the provider keeps refreshing it (up to the absolute cap); without
/// one it lasts the normal 24 hours and is not checked at the provider again.
pub async fn sign_in_sso(
    session: &Session,
    cipher: &crate::crypto::Cipher,
    user: &SessionUser,
    subject: &str,
    tokens: &crate::oidc::flow::TokenSet,
    now: OffsetDateTime,
) -> Result<String, SessionError> {
    use secrecy::ExposeSecret;
    let lifetime = if tokens.refresh_token.is_some() {
        SSO_ABSOLUTE_LIFETIME
    } else {
        DEFAULT_LIFETIME
    };
    let binding = sign_in(session, user, lifetime, now).await?;
    let stored = StoredTokens {
        id_token: tokens.id_token.expose_secret().to_owned(),
        refresh_token: tokens.refresh_token.as_ref().map(|t| t.expose_secret().to_owned()),
        access_token: tokens.access_token.expose_secret().to_owned(),
        access_issued_at: now.unix_timestamp(),
        access_expires_at: tokens.access_expires_at.map(OffsetDateTime::unix_timestamp),
        sid: tokens.sid.clone(),
        subject: subject.to_owned(),
    };
    session
        .insert(TOKENS_KEY, seal_tokens(cipher, &binding, &stored))
        .await?;
    Ok(binding)
}

pub fn seal_tokens(cipher: &crate::crypto::Cipher, binding: &str, tokens: &StoredTokens) -> String {
    let json = serde_json::to_vec(tokens).unwrap_or_default();
    cipher.seal(&json, &tokens_aad(binding))
}

/// The session's binding and sealed token set, as stored (for the refresh coordinator).
pub async fn sealed_tokens(session: &Session) -> Result<Option<(String, String)>, SessionError> {
    match (
        session.get::<String>(BINDING_KEY).await?,
        session.get::<String>(TOKENS_KEY).await?,
    ) {
        (Some(binding), Some(sealed)) => Ok(Some((binding, sealed))),
        _ => Ok(None),
    }
}

pub fn open_tokens(cipher: &crate::crypto::Cipher, binding: &str, sealed: &str) -> Option<StoredTokens> {
    cipher
        .open(sealed, &tokens_aad(binding))
        .ok()
        .and_then(|json| serde_json::from_slice(&json).ok())
}

/// Replaces the sealed token set (and the user, whose role or groups may have changed).
pub async fn replace_tokens(session: &Session, sealed: &str, user: &SessionUser) -> Result<(), SessionError> {
    session.insert(TOKENS_KEY, sealed).await?;
    session.insert(USER_KEY, user).await
}

/// The ID token of the session's SSO sign-in, for `id_token_hint` at logout.
pub async fn id_token(
    session: &Session,
    cipher: &crate::crypto::Cipher,
) -> Result<Option<secrecy::SecretString>, SessionError> {
    let (Some(binding), Some(sealed)) = (
        session.get::<String>(BINDING_KEY).await?,
        session.get::<String>(TOKENS_KEY).await?,
    ) else {
        return Ok(None);
    };
    Ok(cipher
        .open(&sealed, &tokens_aad(&binding))
        .ok()
        .and_then(|json| serde_json::from_slice::<StoredTokens>(&json).ok())
        .map(|t| secrecy::SecretString::from(t.id_token)))
}

fn random_binding() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
