//! Server-side helpers for server functions: reaching the core and the session, and turning
//! internal failures into a generic error (details go to the log, never to the browser).
use std::sync::Arc;

use leptos::prelude::*;
use pulse_core::{session::SessionUser, Core};

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
