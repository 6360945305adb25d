//! What pages ask the server for: the shared data shapes and the server functions that answer.
//! Each server function is a public endpoint: it checks the session itself and only adapts the core.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The signed-in user as a page may show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub username: String,
    pub email: Option<String>,
    pub groups: Vec<String>,
    pub role: String,
    pub auth_method: String,
    pub signed_in_at: i64,
}

/// What the login page needs to decide what to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginOptions {
    pub hide_local_login: bool,
    pub sso_providers: Vec<SsoProvider>,
    pub setup_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoProvider {
    pub id: String,
    pub display_name: String,
    pub login_url: String,
}

/// JSON body of `POST /api/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub remember_me: bool,
    #[serde(default)]
    pub return_to: Option<String>,
}

/// JSON error body of the API: a machine code and a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiErrorBody {
    pub error: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<i64>,
}

#[server(prefix = "/api/fn", endpoint = "viewer")]
pub async fn get_viewer() -> Result<Option<Viewer>, ServerFnError> {
    let user = crate::ssr::current_user().await?;
    Ok(user.map(|user| Viewer {
        username: user.username,
        email: user.email,
        groups: user.groups,
        role: user.role.as_str().to_owned(),
        auth_method: user.auth_method.as_str().to_owned(),
        signed_in_at: user.signed_in_at,
    }))
}

#[server(prefix = "/api/fn", endpoint = "login_options")]
pub async fn get_login_options() -> Result<LoginOptions, ServerFnError> {
    let core = crate::ssr::core()?;
    let setup_required = !core
        .has_local_admin()
        .await
        .map_err(crate::ssr::internal("reading accounts"))?;
    let sso_providers = core
        .oidc
        .buttons()
        .into_iter()
        .map(|b| SsoProvider {
            id: b.id.to_owned(),
            display_name: b.display_name,
            login_url: b.login_url.to_owned(),
        })
        .collect();
    // The core never hides the form while SSO is unusable: nobody gets locked out.
    let hide_local_login = core
        .hide_local_login()
        .await
        .map_err(crate::ssr::internal("reading settings"))?;
    Ok(LoginOptions {
        hide_local_login,
        sso_providers,
        setup_required,
    })
}

/// A session as the sessions screen lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: String,
    pub username: String,
    pub method: String,
    pub ip: Option<String>,
    pub browser: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub renews_with_provider: bool,
    pub current: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionsView {
    pub sessions: Vec<SessionInfo>,
    pub viewer_is_admin: bool,
}

/// The signed-in user's sessions; an admin sees everyone's.
#[server(prefix = "/api/fn", endpoint = "sessions")]
pub async fn list_sessions() -> Result<SessionsView, ServerFnError> {
    let core = crate::ssr::core()?;
    let session = crate::ssr::session().await?;
    let user = crate::ssr::current_user()
        .await?
        .ok_or_else(|| ServerFnError::new("Sign in first."))?;
    let current = pulse_core::session::binding(&session)
        .await
        .map_err(crate::ssr::internal("reading the session"))?;
    let owner = (!user.is_admin()).then_some(user.user_id);
    let rows = pulse_core::store::sessions::active(&core.db, owner, core.clock.now())
        .await
        .map_err(crate::ssr::internal("listing sessions"))?;
    Ok(SessionsView {
        viewer_is_admin: user.is_admin(),
        sessions: rows
            .into_iter()
            .map(|row| SessionInfo {
                current: current.as_deref() == Some(row.binding.as_str()),
                id: row.binding,
                username: row.username,
                method: row.method,
                ip: row.ip,
                browser: summarise_user_agent(row.user_agent.as_deref()),
                created_at: row.created_at,
                last_seen_at: row.last_seen_at,
                expires_at: row.expires_at,
                renews_with_provider: row.has_refresh,
            })
            .collect(),
    })
}

/// Ends a session: the user's own, or anyone's for an admin.
#[server(prefix = "/api/fn", endpoint = "revoke_session")]
pub async fn revoke_session(id: String) -> Result<(), ServerFnError> {
    let core = crate::ssr::core()?;
    let user = crate::ssr::current_user()
        .await?
        .ok_or_else(|| ServerFnError::new("Sign in first."))?;
    let ended = pulse_core::auth::revoke_session(&core, &user, &id)
        .await
        .map_err(crate::ssr::internal("revoking the session"))?;
    if !ended {
        return Err(ServerFnError::new("No such session of yours."));
    }
    Ok(())
}

/// "Chrome on Linux" from a user agent string; good enough to recognise one's own devices.
pub fn summarise_user_agent(user_agent: Option<&str>) -> String {
    let Some(ua) = user_agent else {
        return "Unknown".to_owned();
    };
    let browser = [
        ("Edg/", "Edge"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Safari/", "Safari"),
        ("curl/", "curl"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name)
    .unwrap_or("Other");
    let system = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map(|(_, name)| *name);
    match system {
        Some(system) => format!("{browser} on {system}"),
        None => browser.to_owned(),
    }
}

/// One line of the audit log as the admin screen shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub username: Option<String>,
    pub ip: Option<String>,
    pub method: Option<String>,
    /// What changed, for settings changes (field names, never secret values).
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    pub has_more: bool,
}

pub const AUDIT_PAGE_SIZE: i64 = 50;

/// Admins only: the audit log, newest first, filtered and paged.
#[server(prefix = "/api/fn", endpoint = "audit")]
pub async fn list_audit(
    event: Option<String>,
    username: Option<String>,
    page: i64,
) -> Result<AuditPage, ServerFnError> {
    let core = crate::ssr::core()?;
    crate::ssr::require_admin().await?;
    let event = event.filter(|e| !e.is_empty());
    let username = username.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty());
    let offset = page.clamp(0, 10_000) * AUDIT_PAGE_SIZE;
    let mut rows = pulse_core::store::audit::search(
        &core.db,
        event.as_deref(),
        username.as_deref(),
        AUDIT_PAGE_SIZE + 1,
        offset,
    )
    .await
    .map_err(crate::ssr::internal("reading the audit log"))?;
    let has_more = rows.len() as i64 > AUDIT_PAGE_SIZE;
    rows.truncate(AUDIT_PAGE_SIZE as usize);
    Ok(AuditPage {
        has_more,
        entries: rows
            .into_iter()
            .map(|row| AuditEntry {
                at: row.at,
                event: row.event,
                outcome: row.outcome,
                reason: row.reason,
                username: row.username,
                ip: row.ip,
                method: row.method,
                detail: row.detail,
            })
            .collect(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    pub scope: String,
    pub subject: String,
    pub until: i64,
}

/// What the Authentication screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSettings {
    pub is_admin: bool,
    pub has_password: bool,
    pub hide_local_login: bool,
    pub hide_env_managed: bool,
    pub sso_active: bool,
    /// The SSO settings in force passed Test connection.
    pub sso_verified: bool,
    pub locks: Vec<LockInfo>,
}

#[server(prefix = "/api/fn", endpoint = "auth_settings")]
pub async fn get_auth_settings() -> Result<AuthSettings, ServerFnError> {
    let core = crate::ssr::core()?;
    let user = crate::ssr::require_admin().await?;
    let has_password = pulse_core::store::users::password_hash_by_id(&core.db, user.user_id)
        .await
        .map_err(crate::ssr::internal("reading the account"))?
        .is_some();
    let stored_hide = core.stored_hide_local_login();
    // Locks are an administrator's business only.
    let locks = if user.is_admin() {
        pulse_core::store::lockout::current_locks(&core.db, core.clock.now())
            .await
            .map_err(crate::ssr::internal("reading lockouts"))?
            .into_iter()
            .map(|lock| LockInfo {
                scope: lock.scope.name().to_owned(),
                subject: lock.subject,
                until: lock.until.unix_timestamp(),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(AuthSettings {
        is_admin: user.is_admin(),
        has_password,
        hide_local_login: core.config.hide_local_login.unwrap_or(stored_hide),
        hide_env_managed: core.config.hide_local_login.is_some(),
        sso_active: core.oidc.active().is_some(),
        sso_verified: pulse_core::sso_admin::verified_at(&core)
            .await
            .map_err(crate::ssr::internal("reading the connection test record"))?
            .is_some(),
        locks,
    })
}

// ---------------------------------------------------------------------------------------------
// Settings › Security › Single sign-on (OIDC)
//
// Reading: the `sso_settings` server function (admins only).
// Writing: `POST /settings/security/sso`, a plain urlencoded form post handled by the server crate
// (server/src/sso_forms.rs), so the screen works without JavaScript. Form fields:
//   intent            save | test | clear_secret | validate
//   enabled_present   "1" when the form shows the Enabled checkbox (so an unticked box means off)
//   enabled           "true" when ticked
//   client_secret     blank keeps the stored secret
//   every name in SSO_TEXT_FIELDS, each optional: a field that is not sent is never changed.
// Without `Accept: application/json` the answer is 303 back to the page; what the form held (minus
// the secret), the errors and the test report come back through the `flash` of `SsoScreen`.
// With `Accept: application/json` (the hydrated page) the answer is an `SsoReply` as JSON:
// 200 when saved/tested/validated, 422 with field errors, 401/403 for non-admins.
// ---------------------------------------------------------------------------------------------

/// The text fields of the SSO form, in screen order.
pub const SSO_TEXT_FIELDS: &[&str] = &[
    "issuer_url",
    "client_id",
    "redirect_url",
    "logout_url",
    "scopes",
    "display_name",
    "username_claim",
    "email_claim",
    "groups_claim",
    "allowed_groups",
    "allowed_domains",
    "allowed_emails",
    "admin_groups",
    "prompt",
    "ca_bundle",
];

/// One SSO setting as the screen shows it. Lists are one item per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoField {
    pub name: String,
    pub value: String,
    /// The environment variable that sets this field (then it is read-only here).
    pub managed_by: Option<String>,
}

/// A message about one field (`field` is a name from `SSO_TEXT_FIELDS`, `enabled` or
/// `client_secret`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldMessage {
    pub field: String,
    pub message: String,
}

/// One line of the Test connection checklist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckLine {
    /// discovery | issuer | jwks | rs256 | client | end_session | timeout
    pub id: String,
    pub label: String,
    /// passed | failed | warning | skipped
    pub status: String,
    pub detail: String,
    /// What to do about a failure or warning.
    pub fix: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionReport {
    pub passed: bool,
    pub lines: Vec<CheckLine>,
}

/// The answer to a post of the SSO form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoReply {
    pub intent: String,
    /// saved | unchanged | invalid | tested | secret_cleared | validated | forbidden | unauthenticated | error
    pub outcome: String,
    /// A sentence for the banner.
    pub message: String,
    pub errors: Vec<FieldMessage>,
    pub report: Option<ConnectionReport>,
    /// What the form held when it was posted (never the secret): shown again after a
    /// no-JavaScript post that did not save.
    pub values: Vec<(String, String)>,
    /// The screen after a successful save or clear (JSON answers only).
    pub screen: Option<Box<SsoScreen>>,
}

/// What the SSO screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SsoScreen {
    pub enabled: bool,
    pub enabled_managed_by: Option<String>,
    /// Every field of `SSO_TEXT_FIELDS`, in that order.
    pub fields: Vec<SsoField>,
    pub secret_set: bool,
    pub secret_managed_by: Option<String>,
    /// The redirect URL Pulse sends to the provider, exactly.
    pub redirect_url_sent: String,
    /// configured | public_url | request
    pub redirect_url_source: String,
    /// Set when the redirect URL is http:// while Pulse is reached over https.
    pub redirect_url_warning: Option<String>,
    /// SSO is enabled, valid, and in force.
    pub active: bool,
    /// Why the saved settings are not in force, per field.
    pub problems: Vec<FieldMessage>,
    /// When the settings in force last passed Test connection (unix seconds).
    pub verified_at: Option<i64>,
    /// The result of a no-JavaScript post, shown once.
    pub flash: Option<SsoReply>,
}

/// Admins only: the SSO settings screen (never the client secret).
#[server(prefix = "/api/fn", endpoint = "sso_settings")]
pub async fn get_sso_settings() -> Result<SsoScreen, ServerFnError> {
    crate::ssr::require_admin().await?;
    crate::ssr::sso_screen().await
}
