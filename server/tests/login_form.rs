//! `POST /login`, the sign-in form that works without JavaScript: 303 to `returnTo` or back with
//! an error code, and never to another site.
mod common;

use common::*;

async fn post_login(app: &TestApp, password: &str, return_to: &str) -> reqwest::Result<reqwest::Response> {
    app.post_form(
        "/login",
        &[
            ("username", ADMIN_USER),
            ("password", password),
            ("rememberMe", "on"),
            ("returnTo", return_to),
        ],
    )
    .await
}

#[tokio::test]
async fn form_login_redirects_to_return_to() -> TestResult {
    let app = spawn_app_with_admin().await;
    let response = post_login(&app, ADMIN_PASS, "/settings/security?tab=sso").await?;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/settings/security?tab=sso");
    assert!(app.is_authenticated().await?);
    Ok(())
}

#[tokio::test]
async fn form_login_failure_redirects_back_with_error_and_remaining() -> TestResult {
    let app = spawn_app_with_admin().await;
    let response = post_login(&app, "not the password at all", "/").await?;
    assert_eq!(response.status(), 303);
    let target = location(&response);
    assert!(
        target.starts_with("/login?error=invalid_credentials&remaining=4"),
        "{target}"
    );
    assert!(!app.is_authenticated().await?);
    Ok(())
}

#[tokio::test]
async fn form_login_never_redirects_to_another_site() -> TestResult {
    let app = spawn_app_with_admin().await;
    for evil in ["//evil.example", "/\\evil.example", "https://evil.example"] {
        let response = post_login(&app, ADMIN_PASS, evil).await?;
        assert_eq!(response.status(), 303, "{evil}");
        assert_eq!(location(&response), "/", "returnTo {evil:?}");
    }
    Ok(())
}
