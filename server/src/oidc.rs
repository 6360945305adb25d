//! The SSO routes: `GET /api/oidc/login` starts the code flow, `GET /api/oidc/callback` finishes
//! it. Both only adapt `pulse_core::oidc`; every failure becomes a redirect to the login page with
//! a code (never a 5xx), and its cause goes to the log with a request id.
use axum::{
    extract::{Query, RawQuery, State},
    http::{header, HeaderMap},
    response::Redirect,
    Extension,
};
use pulse_core::{
    auth,
    oidc::{flow::CallbackParams, OidcErrorCode, OidcFailure},
    return_to::return_to_or_home,
    session,
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::{client::ClientContext, error::new_request_id, state::AppState};

/// The origin browsers use to reach Pulse: the public URL, else this request's scheme and host.
pub fn base_url(state: &AppState, headers: &HeaderMap, client: &ClientContext) -> String {
    if let Some(url) = &state.core.config.public_url {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let forwarded_host = client
        .https
        .then(|| headers.get("x-forwarded-host").and_then(|v| v.to_str().ok()))
        .flatten();
    format!(
        "{}://{}",
        if client.https { "https" } else { "http" },
        forwarded_host.unwrap_or(host)
    )
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Logs a failure and sends the browser to the login page with its code.
fn fail(failure: &OidcFailure, client: &ClientContext) -> Redirect {
    let request_id = new_request_id();
    tracing::warn!(%request_id, ip = %client.ip, code = %failure.code, cause = %failure.cause, "single sign-on failed");
    let mut url = format!("/login?oidc=error&oidc_error={}", failure.code);
    if let Some(description) = &failure.idp_description {
        let short: String = description.chars().take(300).collect();
        url.push_str(&format!("&oidc_error_description={}", encode(&short)));
    }
    Redirect::to(&url)
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(rename = "returnTo")]
    return_to: Option<String>,
}

pub async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    headers: HeaderMap,
    session: Session,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Redirect {
    let return_to = return_to_or_home(query.ok().and_then(|Query(q)| q.return_to).as_deref());
    let core = &state.core;
    let now = core.clock.now();
    let base = base_url(&state, &headers, &client);
    match core.oidc.start_login(&base, &return_to, now).await {
        Ok((url, pending)) => match session::remember_pending(&session, &core.cipher, &pending).await {
            Ok(()) => Redirect::to(&url),
            Err(err) => fail(
                &OidcFailure::new(OidcErrorCode::ProviderUnavailable, format!("session: {err}")),
                &client,
            ),
        },
        Err(failure) => {
            auth::record_sso_failure(core, failure.code.as_str(), &client.ip_string()).await;
            fail(&failure, &client)
        }
    }
}

pub async fn callback(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Redirect {
    let core = &state.core;
    let now = core.clock.now();
    // Garbage query strings are refused as an invalid state, not a 400 page: the user gets the
    // login page with a sentence, whatever the provider (or an attacker) sent.
    let params = raw.as_deref().map(parse_callback_query).unwrap_or_default();
    let pending = match params.state.as_deref() {
        Some(state_value) => session::take_pending(&session, &core.cipher, state_value)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    let completed = match core.oidc.finish_login(pending, &params, now).await {
        Ok(completed) => completed,
        Err(failure) => {
            auth::record_sso_failure(core, failure.code.as_str(), &client.ip_string()).await;
            return fail(&failure, &client);
        }
    };
    let user = match auth::record_sso_login(core, &completed, &client.ip_string()).await {
        Ok(user) => user,
        Err(err) => {
            return fail(
                &OidcFailure::new(OidcErrorCode::ProviderUnavailable, format!("storing the user: {err}")),
                &client,
            )
        }
    };
    if let Err(err) = auth::start_sso_session(core, &session, &user, &completed, client.info()).await {
        return fail(
            &OidcFailure::new(
                OidcErrorCode::ProviderUnavailable,
                format!("starting the session: {err}"),
            ),
            &client,
        );
    }
    tracing::info!(user = %user.username, ip = %client.ip, method = "oidc", admin = user.is_admin(), "signed in");
    Redirect::to(&return_to_or_home(Some(&completed.return_to)))
}

/// Parses the callback query leniently: unknown keys ignored, the first value of a key wins.
fn parse_callback_query(query: &str) -> CallbackParams {
    let mut params = CallbackParams::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "iss" => &mut params.iss,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(value.into_owned());
        }
    }
    params
}

/// Refreshes an SSO session's tokens when due (see `pulse_core::session_refresh`). When the
/// provider ends the session, page loads go to the login page with the reason; other requests
/// simply continue signed out.
pub async fn keep_sso_fresh(
    State(state): State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let path = request.uri().path();
    if path.starts_with("/pkg/") || path == "/api/health" {
        return next.run(request).await;
    }
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return next.run(request).await;
    };
    match pulse_core::session_refresh::ensure_fresh(&state.core, &session).await {
        Ok(pulse_core::session_refresh::Freshness::Ended { reason }) => {
            let is_page = request.method() == axum::http::Method::GET && !path.starts_with("/api/");
            if is_page {
                let target = request.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
                return Redirect::to(&format!("/login?session_ended={reason}&returnTo={}", encode(target)))
                    .into_response();
            }
            next.run(request).await
        }
        Ok(pulse_core::session_refresh::Freshness::Fresh) => next.run(request).await,
        Err(err) => {
            tracing::error!(error = %err, "could not check the session's tokens");
            next.run(request).await
        }
    }
}

#[derive(Deserialize)]
pub struct BackchannelForm {
    logout_token: Option<String>,
}

/// `POST /api/oidc/backchannel-logout` (form-encoded `logout_token`): 200 when handled, 400 for
/// any invalid token (as the specification asks), never a 5xx for bad input.
pub async fn backchannel_logout(
    State(state): State<AppState>,
    form: Result<axum::Form<BackchannelForm>, axum::extract::rejection::FormRejection>,
) -> axum::response::Response {
    use axum::{http::StatusCode, response::IntoResponse, Json};
    use pulse_core::oidc::service::BackchannelError;
    let core = &state.core;
    let bad = |reason: String| {
        tracing::warn!(%reason, "refused a back-channel logout");
        (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": "invalid_request", "error_description": reason })),
        )
            .into_response()
    };
    let Some(token) = form
        .ok()
        .and_then(|axum::Form(f)| f.logout_token)
        .filter(|t| !t.is_empty())
    else {
        return bad("logout_token is required".into());
    };
    match core.oidc.backchannel_logout(&core.db, &token, core.clock.now()).await {
        Ok(revoked) => {
            tracing::info!(sessions = revoked.len(), "back-channel logout ended sessions");
            core.revoke_bindings(revoked, "backchannel_logout");
            let mut response = StatusCode::OK.into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
            response
        }
        Err(BackchannelError::Invalid(reason)) => bad(reason),
        Err(err) => {
            let request_id = new_request_id();
            tracing::error!(%request_id, error = %err, "back-channel logout failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "error": "temporarily_unavailable" })),
            )
                .into_response()
        }
    }
}
