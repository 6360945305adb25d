//! Page access: signed-out visitors of protected pages go to the login page and come back after.
mod common;

use common::*;

#[tokio::test]
async fn protected_page_sends_signed_out_visitors_to_login() -> TestResult {
    let app = spawn_app_with_admin().await;
    let response = app.get("/").await?;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?returnTo=%2F");

    let response = app.get("/?x=1").await?;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login?returnTo=%2F%3Fx%3D1");
    Ok(())
}

#[tokio::test]
async fn home_page_shows_the_signed_in_user() -> TestResult {
    let username = "dana-the-admin";
    let app = spawn_app_with(|raw| with_env_admin(raw, username, ADMIN_PASS)).await;
    assert_eq!(app.login(username, ADMIN_PASS).await?.status(), 200);
    let response = app.get("/").await?;
    assert_eq!(response.status(), 200);
    assert!(header_text(&response, "content-type").starts_with("text/html"));
    let html = response.text().await?;
    assert!(html.contains(username), "the page does not name the signed-in user");
    Ok(())
}

#[tokio::test]
async fn login_page_sends_signed_in_visitors_on_to_return_to() -> TestResult {
    let app = spawn_app_with_admin().await;
    assert_eq!(
        app.get("/login?returnTo=/x").await?.status(),
        200,
        "signed out: the form is shown"
    );
    app.login_as_admin().await?;
    let response = app.get("/login?returnTo=/x").await?;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/x");
    let response = app.get("/login?returnTo=//evil.example").await?;
    assert_eq!(location(&response), "/");
    Ok(())
}
