//! Server-side helpers for server functions: reaching the core and the session, and turning
//! internal failures into a generic error (details go to the log, never to the browser).
use std::sync::Arc;

use leptos::prelude::*;
use pulse_core::{session::SessionUser, setup::FieldError, sso_admin::SsoView, Core};

use crate::api::{CheckLine, ConnectionReport, FieldMessage, SsoField, SsoReply, SsoScreen};

/// The core, provided as context by the server for every request.
pub fn core() -> Result<Arc<Core>, ServerFnError> {
    use_context::<Arc<Core>>().ok_or_else(|| ServerFnError::new("server misconfigured"))
}

pub async fn session() -> Result<tower_sessions::Session, ServerFnError> {
    leptos_axum::extract::<tower_sessions::Session>().await.map_err(|err| {
        tracing::error!(error = %err, "session layer missing");
        ServerFnError::new("session unavailable")
    })
}

pub async fn current_user() -> Result<Option<SessionUser>, ServerFnError> {
    let session = session().await?;
    pulse_core::session::current_user(&session)
        .await
        .map_err(internal("reading the session"))
}

/// Logs `err` with what was being done and returns an error that reveals nothing.
pub fn internal<E: std::fmt::Display>(doing: &'static str) -> impl FnOnce(E) -> ServerFnError {
    move |err| {
        tracing::error!(error = %err, "{doing} failed");
        ServerFnError::new(format!("{doing} failed; see the server log"))
    }
}

/// The signed-in admin, or an error a page turns into 403. Every admin server function calls it.
pub async fn require_admin() -> Result<SessionUser, ServerFnError> {
    match current_user().await? {
        Some(user) if user.is_admin() => Ok(user),
        Some(_) => {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(axum::http::StatusCode::FORBIDDEN);
            }
            Err(ServerFnError::new("forbidden"))
        }
        None => {
            if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
                response.set_status(axum::http::StatusCode::UNAUTHORIZED);
            }
            Err(ServerFnError::new("unauthenticated"))
        }
    }
}

/// How this request reached Pulse (put in the request by the server's client-context layer).
pub fn request_origin() -> String {
    use_context::<axum::http::request::Parts>()
        .and_then(|parts| parts.extensions.get::<pulse_core::oidc::RequestOrigin>().cloned())
        .map(|origin| origin.0)
        .unwrap_or_default()
}

const SSO_FLASH: &str = "pulse.sso.flash";

/// Keeps the result of a no-JavaScript post of the SSO form for the next render of the page.
pub async fn put_sso_flash(session: &tower_sessions::Session, reply: &SsoReply) {
    if let Err(err) = session.insert(SSO_FLASH, reply).await {
        tracing::warn!(error = %err, "could not keep the SSO form result for the next page");
    }
}

async fn take_sso_flash(session: &tower_sessions::Session) -> Option<SsoReply> {
    session.remove::<SsoReply>(SSO_FLASH).await.ok().flatten()
}

/// The SSO screen for this request, with the result of a no-JavaScript post (shown once).
pub async fn sso_screen() -> Result<SsoScreen, ServerFnError> {
    let core = core()?;
    let flash = take_sso_flash(&session().await?).await;
    let view = pulse_core::sso_admin::view(&core, &request_origin())
        .await
        .map_err(internal("reading the single sign-on settings"))?;
    Ok(screen_from(view, flash))
}

pub fn screen_from(view: SsoView, flash: Option<SsoReply>) -> SsoScreen {
    let name = |n: Option<&'static str>| n.map(str::to_owned);
    SsoScreen {
        enabled: view.enabled,
        enabled_managed_by: name(view.enabled_managed_by),
        fields: view
            .fields
            .into_iter()
            .map(|field| SsoField {
                name: field.name.to_owned(),
                value: field.value,
                managed_by: name(field.managed_by),
            })
            .collect(),
        secret_set: view.secret_set,
        secret_managed_by: name(view.secret_managed_by),
        redirect_url_sent: view.redirect_url_sent,
        redirect_url_source: view.redirect_url_source.to_owned(),
        redirect_url_warning: view.redirect_url_warning,
        active: view.active,
        problems: field_messages(view.problems),
        verified_at: view.verified_at,
        flash,
    }
}

pub fn field_messages(errors: Vec<FieldError>) -> Vec<FieldMessage> {
    errors
        .into_iter()
        .map(|error| FieldMessage {
            field: error.field.to_owned(),
            message: error.message,
        })
        .collect()
}

pub fn report_from(report: &pulse_core::oidc::probe::ConnectionReport) -> ConnectionReport {
    ConnectionReport {
        passed: report.passed(),
        lines: report
            .lines
            .iter()
            .map(|line| CheckLine {
                id: line.id.to_owned(),
                label: line.label.to_owned(),
                status: line.status.as_str().to_owned(),
                detail: line.detail.clone(),
                fix: line.fix.clone(),
            })
            .collect(),
    }
}
