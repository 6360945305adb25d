//! Protections on every route: security headers with a fresh CSP nonce, the cross-site check,
//! clear 4xx answers to bad bodies, and the sign-in rate limit.
mod common;

use common::*;
use reqwest::{header, Response};
use serde_json::{json, Value};

fn csp_nonce(response: &Response) -> Option<String> {
    let csp = header_text(response, "content-security-policy");
    let start = csp.find("'nonce-")? + "'nonce-".len();
    let length = csp[start..].find('\'')?;
    Some(csp[start..start + length].to_owned())
}

#[tokio::test]
async fn every_response_carries_the_security_headers() -> TestResult {
    let app = spawn_app_with_admin().await;
    let refused = app
        .client
        .post(app.url("/api/logout"))
        .header(header::ORIGIN, "https://evil.example")
        .send()
        .await?;
    let responses = [
        ("/login", app.get("/login").await?),
        ("/api/health", app.get("/api/health").await?),
        ("/api/security/status", app.get("/api/security/status").await?),
        ("/ (redirect)", app.get("/").await?),
        ("refused POST /api/logout", refused),
    ];
    for (what, response) in &responses {
        let csp = header_text(response, "content-security-policy");
        assert!(
            csp_nonce(response).is_some_and(|nonce| nonce.len() >= 16),
            "{what}: CSP without a nonce: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
        assert_eq!(header_text(response, "x-frame-options"), "DENY", "{what}");
        assert_eq!(header_text(response, "x-content-type-options"), "nosniff", "{what}");
        assert!(
            !header_text(response, "referrer-policy").is_empty(),
            "{what}: no Referrer-Policy"
        );
    }
    Ok(())
}

#[tokio::test]
async fn csp_nonce_is_fresh_and_carried_by_every_inline_script() -> TestResult {
    let app = spawn_app_with_admin().await;
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let response = app.get("/login").await?;
        assert_eq!(response.status(), 200);
        let nonce = csp_nonce(&response).ok_or("no nonce")?;
        let html = response.text().await?;
        let scripts: Vec<&str> = html
            .match_indices("<script")
            .map(|(at, _)| &html[at..at + html[at..].find('>').unwrap_or(0)])
            .collect();
        assert!(!scripts.is_empty(), "the page has no script to check");
        for script in scripts {
            assert!(
                script.contains(&format!("nonce=\"{nonce}\"")),
                "script without this response's nonce: {script}"
            );
        }
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "the nonce must differ per response");
    Ok(())
}

#[tokio::test]
async fn cross_site_posts_are_refused() -> TestResult {
    let app = spawn_app_with_admin().await;
    for path in ["/api/login", "/api/logout", "/login"] {
        let foreign = app
            .client
            .post(app.url(path))
            .header(header::ORIGIN, "https://evil.example")
            .send()
            .await?;
        assert_eq!(foreign.status(), 403, "{path} with a foreign Origin");
        assert_eq!(foreign.json::<Value>().await?["error"], "cross_site_request", "{path}");

        let fetch_metadata = app
            .client
            .post(app.url(path))
            .header("sec-fetch-site", "cross-site")
            .send()
            .await?;
        assert_eq!(fetch_metadata.status(), 403, "{path} with Sec-Fetch-Site: cross-site");
        assert_eq!(
            fetch_metadata.json::<Value>().await?["error"],
            "cross_site_request",
            "{path}"
        );

        let own = app
            .client
            .post(app.url(path))
            .header(header::ORIGIN, app.address())
            .send()
            .await?;
        assert_ne!(own.status(), 403, "{path} with the server's own Origin");
    }
    Ok(())
}

#[tokio::test]
async fn cross_site_login_does_not_sign_in() -> TestResult {
    let app = spawn_app_with_admin().await;
    let response = app
        .client
        .post(app.url("/api/login"))
        .header(header::ORIGIN, "https://evil.example")
        .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASS }))
        .send()
        .await?;
    assert_eq!(response.status(), 403);
    assert!(session_set_cookie(&response).is_none());
    assert!(!app.is_authenticated().await?);
    Ok(())
}

async fn post_raw(app: &TestApp, content_type: &str, body: impl Into<reqwest::Body>) -> reqwest::Result<Response> {
    app.client
        .post(app.url("/api/login"))
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
}

#[tokio::test]
async fn bad_login_bodies_get_a_clear_4xx() -> TestResult {
    let app = spawn_app_with_admin().await;
    let padding = "x".repeat(100 * 1024);
    let cases: Vec<(&str, &str, String, u16)> = vec![
        ("malformed JSON", "application/json", "{\"username\": ".to_owned(), 400),
        (
            "missing password",
            "application/json",
            json!({ "username": ADMIN_USER }).to_string(),
            400,
        ),
        (
            "empty fields",
            "application/json",
            json!({ "username": "", "password": "" }).to_string(),
            400,
        ),
        (
            "wrong field type",
            "application/json",
            json!({ "username": 1, "password": [] }).to_string(),
            400,
        ),
        (
            "100 KB body",
            "application/json",
            json!({ "username": padding, "password": "x" }).to_string(),
            413,
        ),
        (
            "wrong content type",
            "text/plain",
            json!({ "username": ADMIN_USER, "password": "x" }).to_string(),
            415,
        ),
    ];
    for (what, content_type, body, expected) in cases {
        let response = post_raw(&app, content_type, body).await?;
        assert_eq!(response.status().as_u16(), expected, "{what}");
        let body: Value = response.json().await?;
        assert_eq!(body["error"], "invalid_request", "{what}");
        assert!(
            body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: no message"
        );
    }
    assert!(!app.is_authenticated().await?);
    Ok(())
}

#[tokio::test]
async fn login_rate_limit_answers_429_with_retry_after() -> TestResult {
    let app = spawn_app().await;
    let mut first_limited = None;
    for attempt in 1..=40 {
        let response = post_raw(&app, "application/json", "not json").await?;
        if response.status() == 429 {
            let retry_after: u64 = header_text(&response, "retry-after").parse()?;
            assert!(retry_after >= 1);
            assert_eq!(response.json::<Value>().await?["error"], "rate_limited");
            first_limited = Some(attempt);
            break;
        }
        assert_eq!(response.status(), 400, "attempt {attempt}");
    }
    let first_limited = first_limited.ok_or("40 sign-in posts in a row were never rate limited")?;
    assert!(first_limited > 30, "limited after only {first_limited} posts");
    Ok(())
}

#[tokio::test]
async fn health_reports_ok() -> TestResult {
    let app = spawn_app().await;
    let response = app.get("/api/health").await?;
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await?["status"], "ok");
    Ok(())
}
