//! Page-level access: signed-out visitors of protected pages go to `/login?returnTo=…`, signed-in
//! visitors of `/login` go on to where they were heading. Runs before the page renders.
use axum::{
    extract::Request,
    http::Method,
    middleware::Next,
    response::{IntoResponse, Redirect, Response},
};
use pulse_core::{return_to::return_to_or_home, session};
use tower_sessions::Session;

fn is_protected(path: &str) -> bool {
    path == "/" || path == "/settings" || path.starts_with("/settings/")
}

pub async fn page_access(request: Request, next: Next) -> Response {
    if request.method() != Method::GET {
        return next.run(request).await;
    }
    let path = request.uri().path().to_owned();
    if !is_protected(&path) && path != "/login" {
        return next.run(request).await;
    }
    let Some(session) = request.extensions().get::<Session>().cloned() else {
        return next.run(request).await;
    };
    let signed_in = matches!(session::current_user(&session).await, Ok(Some(_)));
    if is_protected(&path) && !signed_in {
        let target = request.uri().path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
        let encoded: String = url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
        return Redirect::to(&format!("/login?returnTo={encoded}")).into_response();
    }
    if path == "/login" && signed_in {
        let return_to = request.uri().query().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .find(|(key, _)| key == "returnTo")
                .map(|(_, value)| value.into_owned())
        });
        return Redirect::to(&return_to_or_home(return_to.as_deref())).into_response();
    }
    next.run(request).await
}

/// `/settings` and `/settings/security`: the first screen of the settings.
pub async fn settings_home() -> Redirect {
    Redirect::to("/settings/security/authentication")
}
