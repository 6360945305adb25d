//! Server-side sessions: a new id at every sign-in, survival across restarts, deletion at sign-out.
mod common;

use common::*;
use serde_json::Value;

#[tokio::test]
async fn login_issues_a_new_session_id_and_retires_the_presented_one() -> TestResult {
    let app = spawn_app_with_admin().await;
    // An anonymous visit may already set a cookie; signing in must not keep its id.
    let anonymous = session_cookie_value(&app.get("/login").await?);
    let first = app.login_as_admin().await?;
    assert_ne!(Some(&first), anonymous.as_ref());
    // The jar presents `first` at the second sign-in: the server must not adopt it.
    let second = app.login_as_admin().await?;
    assert_ne!(first, second, "the session id was not cycled at sign-in");
    assert_eq!(
        app.status_with_cookie(&first).await?["authenticated"],
        false,
        "the old id still works"
    );
    assert_eq!(app.status_with_cookie(&second).await?["authenticated"], true);
    Ok(())
}

#[tokio::test]
async fn session_survives_restart() -> TestResult {
    let mut app = spawn_app_with_admin().await;
    let session_id = app.login_as_admin().await?;
    app.restart().await;
    let status = app.status_with_cookie(&session_id).await?;
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["user"]["username"], ADMIN_USER);
    Ok(())
}

#[tokio::test]
async fn api_logout_deletes_the_session_server_side() -> TestResult {
    let app = spawn_app_with_admin().await;
    let session_id = app.login_as_admin().await?;
    let response = app.client.post(app.url("/api/logout")).send().await?;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await?;
    assert_eq!(body["redirectUrl"], "/login?logged_out=1");
    assert!(!app.is_authenticated().await?);
    // A copy of the cookie kept from before the logout must be worthless too.
    assert_eq!(app.status_with_cookie(&session_id).await?["authenticated"], false);
    Ok(())
}

#[tokio::test]
async fn form_logout_redirects_to_login_and_deletes_the_session() -> TestResult {
    let app = spawn_app_with_admin().await;
    let session_id = app.login_as_admin().await?;
    let response = app.post_form("/logout", &[]).await?;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?logged_out=1");
    assert_eq!(app.status_with_cookie(&session_id).await?["authenticated"], false);
    Ok(())
}
