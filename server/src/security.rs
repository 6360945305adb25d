//! Protections applied around every route: security headers with a per-response CSP nonce, the
//! cross-site request check for state-changing methods, and the rate limit on sign-in endpoints.
use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use governor::clock::{Clock, DefaultClock};
use rand::RngCore;

use crate::{client::ClientContext, error::ApiError, state::AppState};

/// The nonce the page's inline scripts carry; the render reads it from the request extensions.
#[derive(Debug, Clone)]
pub struct CspNonce(pub String);

pub async fn security_headers(mut request: Request, next: Next) -> Response {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let nonce = URL_SAFE_NO_PAD.encode(bytes);
    request.extensions_mut().insert(CspNonce(nonce.clone()));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // 'wasm-unsafe-eval' lets the hydration bundle compile; no other script runs without the nonce.
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    );
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // `same-origin` (not `no-referrer`) so browsers keep sending a real Origin on our own posts.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    let is_static = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/wasm") || t.contains("javascript") || t.starts_with("text/css"));
    if !is_static {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Refuses state-changing requests that a browser marks as coming from another site.
pub async fn same_origin_only(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let https = request.extensions().get::<ClientContext>().is_some_and(|c| c.https);
    let expected = match &state.core.config.public_url {
        Some(url) => url.origin().ascii_serialization(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            format!("{}://{host}", if https { "https" } else { "http" })
        }
    };
    let cross_site = match headers.get(header::ORIGIN).map(|v| v.to_str().unwrap_or("invalid")) {
        Some(origin) => origin != expected,
        // Without Origin, modern browsers still say where the request came from.
        None => headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|site| site == "cross-site" || site == "same-site"),
    };
    if cross_site {
        tracing::warn!(path = %request.uri().path(), "refused a cross-site request");
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "Cross-site requests are not allowed.",
        )
        .into_response();
    }
    next.run(request).await
}

/// A general per-IP limit on the sign-in endpoints, before any body is parsed.
pub async fn auth_rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(client) = request.extensions().get::<ClientContext>().cloned() else {
        return next.run(request).await;
    };
    if let Err(not_until) = state.auth_limiter.check_key(&client.ip) {
        let wait = not_until.wait_time_from(DefaultClock::default().now()).as_secs().max(1);
        tracing::warn!(ip = %client.ip, path = %request.uri().path(), "rate limited");
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Too many requests. Wait a minute and try again.",
        )
        .with_retry_after(wait as i64)
        .into_response();
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    next.run(request).await
}
