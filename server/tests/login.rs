//! `POST /api/login`: the session cookie, the status it unlocks, failure counting and lockout.
mod common;

use common::*;
use serde_json::{json, Value};

const WRONG_PASS: &str = "not the password at all";

#[tokio::test]
async fn login_sets_an_httponly_lax_cookie_and_signs_in() -> TestResult {
    let app = spawn_app_with_admin().await;
    assert_eq!(app.status().await?["authenticated"], false);

    let response = app.login(ADMIN_USER, ADMIN_PASS).await?;
    assert_eq!(response.status(), 200);
    let cookie = session_set_cookie(&response).ok_or("no session cookie")?;
    assert!(cookie_attribute(&cookie, "HttpOnly").is_some(), "{cookie}");
    assert_eq!(
        cookie_attribute(&cookie, "SameSite").as_deref(),
        Some("Lax"),
        "{cookie}"
    );
    assert!(
        cookie_attribute(&cookie, "Secure").is_none(),
        "plain http without a public URL: {cookie}"
    );

    let status = app.status().await?;
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["user"]["username"], ADMIN_USER);
    assert_eq!(status["user"]["role"], "admin");
    assert_eq!(status["user"]["authMethod"], "password");
    Ok(())
}

#[tokio::test]
async fn wrong_password_counts_down_the_remaining_attempts() -> TestResult {
    let app = spawn_app_with_admin().await;
    for remaining in [4, 3, 2, 1] {
        let response = app.login(ADMIN_USER, WRONG_PASS).await?;
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await?;
        assert_eq!(body["error"], "invalid_credentials");
        assert_eq!(body["remaining"], remaining);
    }
    assert!(!app.is_authenticated().await?);
    Ok(())
}

#[tokio::test]
async fn unknown_user_gets_the_same_answer_as_a_wrong_password() -> TestResult {
    let app = spawn_app_with_admin().await;
    let unknown = app.login("nobody-by-this-name", WRONG_PASS).await?;
    assert_eq!(unknown.status(), 401);
    let unknown: Value = unknown.json().await?;
    assert_eq!(unknown["error"], "invalid_credentials");
    assert_eq!(unknown["remaining"], 4);

    let wrong: Value = app.login(ADMIN_USER, WRONG_PASS).await?.json().await?;
    assert_eq!(
        wrong["message"], unknown["message"],
        "the answer must not reveal which accounts exist"
    );
    Ok(())
}

#[tokio::test]
async fn five_failures_lock_out_even_the_right_password() -> TestResult {
    let app = spawn_app_with_admin().await;
    app.lock_out_admin().await?;
    let response = app.login(ADMIN_USER, ADMIN_PASS).await?;
    assert_eq!(response.status(), 423);
    let body: Value = response.json().await?;
    assert_eq!(body["error"], "locked");
    let retry_after = body["retryAfter"].as_i64().ok_or("no retryAfter")?;
    assert!((1..=15 * 60).contains(&retry_after), "retryAfter {retry_after}");
    assert!(!app.is_authenticated().await?);
    Ok(())
}

#[tokio::test]
async fn lockout_survives_restart() -> TestResult {
    let mut app = spawn_app_with_admin().await;
    app.lock_out_admin().await?;
    // Without PULSE_AUTH_PASS, which would deliberately lift the admin's lockout.
    app.restart_with(|raw| {
        raw.auth_user = None;
        raw.auth_pass = None;
    })
    .await;
    assert_eq!(app.login(ADMIN_USER, ADMIN_PASS).await?.status(), 423);
    Ok(())
}

#[tokio::test]
async fn lockout_ends_after_fifteen_minutes() -> TestResult {
    let app = spawn_app_with_admin().await;
    app.lock_out_admin().await?;
    app.clock.advance(time::Duration::minutes(14));
    assert_eq!(app.login(ADMIN_USER, ADMIN_PASS).await?.status(), 423);
    app.clock.advance(time::Duration::minutes(1));
    assert_eq!(app.login(ADMIN_USER, ADMIN_PASS).await?.status(), 200);
    assert!(app.is_authenticated().await?);
    Ok(())
}

#[tokio::test]
async fn reset_lockout_command_lifts_the_lockout() -> TestResult {
    let app = spawn_app_with_admin().await;
    app.lock_out_admin().await?;
    // What `pulse admin reset-lockout` runs, on its own connection to the data directory.
    let db = pulse_core::store::open(app.data_dir()).await?;
    assert!(pulse_core::store::lockout::clear_all(&db).await? > 0);
    assert_eq!(app.login(ADMIN_USER, ADMIN_PASS).await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn restart_with_env_password_lifts_the_admins_lockout() -> TestResult {
    let mut app = spawn_app_with_admin().await;
    app.lock_out_admin().await?;
    app.restart().await;
    // From the same address the failures came from: the admin's own browser.
    assert_eq!(app.login(ADMIN_USER, ADMIN_PASS).await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn remember_me_keeps_the_cookie_for_thirty_days_instead_of_one() -> TestResult {
    let app = spawn_app_with_admin().await;
    let max_age_after = |remember: bool| {
        let app = &app;
        async move {
            let body = json!({ "username": ADMIN_USER, "password": ADMIN_PASS, "rememberMe": remember });
            let response = app.post_json("/api/login", &body).await?;
            assert_eq!(response.status(), 200);
            let cookie = session_set_cookie(&response).ok_or("no session cookie")?;
            let max_age = cookie_attribute(&cookie, "Max-Age")
                .ok_or("no Max-Age")?
                .parse::<i64>()?;
            Ok::<i64, Box<dyn std::error::Error>>(max_age)
        }
    };
    let day = 24 * 60 * 60;
    let short = max_age_after(false).await?;
    assert!((day - 60..=day).contains(&short), "Max-Age {short} without remember me");
    let long = max_age_after(true).await?;
    assert!(
        (30 * day - 60..=30 * day).contains(&long),
        "Max-Age {long} with remember me"
    );
    Ok(())
}
