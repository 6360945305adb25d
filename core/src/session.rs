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
pub async fn sign_in(
    session: &Session,
    user: &SessionUser,
    lifetime: Duration,
    now: OffsetDateTime,
) -> Result<(), SessionError> {
    session.cycle_id().await?;
    session.insert(USER_KEY, user).await?;
    session.set_expiry(Some(Expiry::AtDateTime(now + lifetime)));
    Ok(())
}

/// Deletes the session server-side and clears the cookie.
pub async fn sign_out(session: &Session) -> Result<(), SessionError> {
    session.flush().await
}
