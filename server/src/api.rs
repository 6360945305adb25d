//! The JSON API of SPEC §3: status, login, logout, health. Handlers only adapt the core.
use axum::{
    extract::{rejection::JsonRejection, State},
    http::StatusCode,
    Extension, Json,
};
use pulse_app::api::LoginRequest;
use pulse_core::{
    auth::{self, LoginError},
    secrecy::SecretString,
    session,
    store::audit::{self, AuditEvent, Outcome},
};
use serde::Serialize;
use serde_json::{json, Value};
use tower_sessions::Session;

use crate::{client::ClientContext, error::ApiError, state::AppState};

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match sqlx::query_scalar::<_, i64>("SELECT 1").fetch_one(&state.core.db).await {
        Ok(_) => (StatusCode::OK, Json(json!({ "status": "ok", "database": "ok" }))),
        Err(err) => {
            tracing::error!(error = %err, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "database": "error" })),
            )
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityStatus {
    has_authentication: bool,
    sso_enabled: bool,
    hide_local_login: bool,
    sso_providers: Vec<Value>,
    authenticated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<Value>,
}

pub async fn security_status(
    State(state): State<AppState>,
    session: Session,
) -> Result<Json<SecurityStatus>, ApiError> {
    let core = &state.core;
    let user = session::current_user(&session)
        .await
        .map_err(|e| ApiError::internal("reading the session", e))?;
    let has_authentication = core
        .has_local_admin()
        .await
        .map_err(|e| ApiError::internal("reading accounts", e))?;
    let sso_providers: Vec<Value> = core
        .oidc
        .buttons()
        .into_iter()
        .map(|b| json!({ "id": b.id, "displayName": b.display_name, "loginUrl": b.login_url }))
        .collect();
    let hide = core
        .hide_local_login()
        .await
        .map_err(|e| ApiError::internal("reading settings", e))?;
    Ok(Json(SecurityStatus {
        has_authentication,
        sso_enabled: !sso_providers.is_empty(),
        hide_local_login: hide,
        sso_providers,
        authenticated: user.is_some(),
        user: user.map(|u| {
            json!({
                "username": u.username,
                "email": u.email,
                "groups": u.groups,
                "role": u.role.as_str(),
                "authMethod": u.auth_method.as_str(),
            })
        }),
    }))
}

/// Signs in with a username and password; shared by the JSON API and the no-JavaScript form.
pub async fn sign_in_locally(
    state: &AppState,
    session: &Session,
    client: &ClientContext,
    username: &str,
    password: SecretString,
    remember_me: bool,
) -> Result<(), ApiError> {
    let core = &state.core;
    if username.trim().is_empty() || secrecy::ExposeSecret::expose_secret(&password).is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Enter a username and a password.",
        ));
    }
    let user = auth::login_local(core, username, &password, &client.ip_string())
        .await
        .map_err(|err| match err {
            LoginError::InvalidCredentials { remaining } => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "Invalid username or password.",
            )
            .with_remaining(remaining),
            LoginError::Locked { until } => {
                let seconds = (until - core.clock.now()).whole_seconds().max(1);
                ApiError::new(
                    StatusCode::LOCKED,
                    "locked",
                    format!(
                        "Too many failed attempts. Sign-in is locked for {} more minutes.",
                        (seconds + 59) / 60
                    ),
                )
                .with_retry_after(seconds)
            }
            LoginError::Storage(err) => ApiError::internal("checking the password", err),
        })?;
    auth::start_local_session(core, session, &user, remember_me, client.info())
        .await
        .map_err(|e| ApiError::internal("starting the session", e))?;
    tracing::info!(user = %user.username, ip = %client.ip, method = "password", "signed in");
    Ok(())
}

pub async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    session: Session,
    body: Result<Json<LoginRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let Json(request) = body.map_err(|rejection| {
        let status = match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => StatusCode::PAYLOAD_TOO_LARGE,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(
            status,
            "invalid_request",
            format!("The request body is not valid: {}", rejection.body_text()),
        )
    })?;
    sign_in_locally(
        &state,
        &session,
        &client,
        &request.username,
        SecretString::from(request.password),
        request.remember_me,
    )
    .await?;
    let redirect = pulse_core::return_to::return_to_or_home(request.return_to.as_deref());
    Ok(Json(json!({ "ok": true, "redirectUrl": redirect })))
}

/// Ends the session; shared by the JSON API and the form. Returns where the browser goes next:
/// the provider's end-session URL for SSO sessions, else the login page.
pub async fn sign_out(
    state: &AppState,
    session: &Session,
    client: &ClientContext,
    base_url: &str,
) -> Result<String, ApiError> {
    let user = session::current_user(session).await.ok().flatten();
    let id_token = session::id_token(session, &state.core.cipher).await.ok().flatten();
    // The local session ends first, whatever happens next.
    auth::end_session(&state.core, session, "logout")
        .await
        .map_err(|e| ApiError::internal("ending the session", e))?;
    if let Some(user) = &user {
        let ip = client.ip_string();
        let entry = AuditEvent {
            username: Some(&user.username),
            ip: Some(&ip),
            method: Some(user.auth_method.as_str()),
            ..AuditEvent::new("logout", Outcome::Success)
        };
        if let Err(err) = audit::record(&state.core.db, state.core.clock.now(), &entry).await {
            tracing::error!(error = %err, "could not write the audit log");
        }
        tracing::info!(user = %user.username, ip = %client.ip, "signed out");
    }
    let signed_out_page = "/login?logged_out=1";
    if user.is_some_and(|u| u.auth_method == session::AuthMethod::Oidc) {
        let back = format!("{}{signed_out_page}", base_url.trim_end_matches('/'));
        let now = state.core.clock.now();
        if let Some(url) = state.core.oidc.end_session_url(id_token.as_ref(), &back, now).await {
            return Ok(url);
        }
    }
    Ok(signed_out_page.to_owned())
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    headers: axum::http::HeaderMap,
    session: Session,
) -> Result<Json<Value>, ApiError> {
    let base = crate::oidc::base_url(&state, &headers, &client);
    let redirect = sign_out(&state, &session, &client, &base).await?;
    Ok(Json(json!({ "redirectUrl": redirect })))
}
