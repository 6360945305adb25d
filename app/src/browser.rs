//! What only the hydrated page does in the browser: calling the JSON API and navigating.
//! The server build gets inert twins so the components compile unchanged on both sides.
use crate::api::{ApiErrorBody, LoginRequest};

/// The outcome of a sign-in attempt made from the hydrated login form.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
pub enum LoginReply {
    SignedIn,
    Refused {
        code: String,
        remaining: Option<i64>,
        retry_after: Option<i64>,
    },
}

#[cfg(feature = "hydrate")]
pub async fn post_login(request: &LoginRequest) -> LoginReply {
    use gloo_net::http::Request;
    let refused = |code: &str| LoginReply::Refused {
        code: code.to_owned(),
        remaining: None,
        retry_after: None,
    };
    let Ok(builder) = Request::post("/api/login").json(request) else {
        return refused("internal");
    };
    let Ok(response) = builder.send().await else {
        return refused("network");
    };
    if response.ok() {
        return LoginReply::SignedIn;
    }
    match response.json::<ApiErrorBody>().await {
        Ok(body) => LoginReply::Refused {
            code: body.error,
            remaining: body.remaining,
            retry_after: body.retry_after,
        },
        Err(_) if response.status() == 429 => refused("rate_limited"),
        Err(_) => refused("internal"),
    }
}

#[cfg(not(feature = "hydrate"))]
pub async fn post_login(_request: &LoginRequest) -> LoginReply {
    let _ = std::marker::PhantomData::<ApiErrorBody>;
    LoginReply::Refused {
        code: "internal".into(),
        remaining: None,
        retry_after: None,
    }
}

/// A full page load, so the next page renders on the server with the new session.
pub fn go_to(url: &str) {
    #[cfg(feature = "hydrate")]
    if let Some(window) = web_sys::window() {
        let _ = window.location().assign(url);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = url;
}

/// Marks the document as hydrated; end-to-end tests wait for it before clicking.
pub fn mark_hydrated() {
    #[cfg(feature = "hydrate")]
    if let Some(body) = web_sys::window().and_then(|w| w.document()).and_then(|d| d.body()) {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
