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
    let setup_required = !pulse_core::store::users::any_local_admin(&core.db)
        .await
        .map_err(crate::ssr::internal("reading accounts"))?;
    let sso_providers = core
        .oidc
        .buttons()
        .into_iter()
        .map(|b| SsoProvider { id: b.id.to_owned(), display_name: b.display_name, login_url: b.login_url.to_owned() })
        .collect();
    // The core never hides the form while SSO is unusable: nobody gets locked out.
    let hide_local_login = core.hide_local_login().await.map_err(crate::ssr::internal("reading settings"))?;
    Ok(LoginOptions { hide_local_login, sso_providers, setup_required })
}
