//! First run: the setup token, the `/setup` form, and the administrator from the environment.
mod common;

use common::*;
use pulse_core::store::users;

const OWNER: &str = "owner";
const OWNER_PASS: &str = "a long enough password";

async fn admin_count(app: &TestApp) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin'")
        .fetch_one(&app.core().db)
        .await
}

async fn post_setup(
    app: &TestApp,
    token: &str,
    username: &str,
    password: &str,
    confirm: &str,
) -> reqwest::Result<reqwest::Response> {
    let fields = [
        ("token", token),
        ("username", username),
        ("password", password),
        ("confirm", confirm),
    ];
    app.post_form("/setup", &fields).await
}

#[cfg(unix)]
fn mode_of(path: &std::path::Path) -> std::io::Result<u32> {
    use std::os::unix::fs::PermissionsExt;
    Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
}

#[tokio::test]
async fn fresh_data_dir_gets_a_private_setup_token() -> TestResult {
    let app = spawn_app().await;
    let path = app.data_dir().join(".setup-token");
    assert!(path.is_file(), "no setup token file at {}", path.display());
    assert!(
        app.setup_token().len() >= 16,
        "the token is too short to resist guessing"
    );
    #[cfg(unix)]
    assert_eq!(mode_of(&path)?, 0o600);
    assert_eq!(app.status().await?["hasAuthentication"], false);
    Ok(())
}

#[tokio::test]
async fn setup_with_a_wrong_token_creates_no_admin() -> TestResult {
    let app = spawn_app().await;
    let response = post_setup(&app, "not-the-token", OWNER, OWNER_PASS, OWNER_PASS).await?;
    assert_eq!(response.status(), 303);
    assert!(
        location(&response).starts_with("/setup?error=bad_token"),
        "{}",
        location(&response)
    );
    assert_eq!(admin_count(&app).await?, 0);
    assert!(!app.is_authenticated().await?);
    assert!(
        app.data_dir().join(".setup-token").exists(),
        "a wrong guess must not burn the token"
    );
    Ok(())
}

#[tokio::test]
async fn setup_with_the_token_creates_the_admin_once_and_signs_in() -> TestResult {
    let app = spawn_app().await;
    let token = app.setup_token();
    let response = post_setup(&app, &token, OWNER, OWNER_PASS, OWNER_PASS).await?;
    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/");
    assert!(
        session_cookie_value(&response).is_some(),
        "no session cookie after setup"
    );
    let status = app.status().await?;
    assert_eq!(status["authenticated"], true);
    assert_eq!(status["user"]["username"], OWNER);
    assert_eq!(status["user"]["role"], "admin");
    assert!(
        !app.data_dir().join(".setup-token").exists(),
        "the setup token is single-use"
    );

    let replay = post_setup(&app, &token, "intruder", OWNER_PASS, OWNER_PASS).await?;
    assert_eq!(replay.status(), 303);
    assert_eq!(location(&replay), "/login");
    assert_eq!(admin_count(&app).await?, 1);
    assert!(users::find_local(&app.core().db, "intruder").await?.is_none());
    Ok(())
}

#[tokio::test]
async fn setup_refuses_a_short_password() -> TestResult {
    let app = spawn_app().await;
    let token = app.setup_token();
    let response = post_setup(&app, &token, OWNER, "elevenchars", "elevenchars").await?;
    assert_eq!(response.status(), 303);
    assert!(
        location(&response).starts_with("/setup?error=password_short"),
        "{}",
        location(&response)
    );
    assert_eq!(admin_count(&app).await?, 0);
    Ok(())
}

#[tokio::test]
async fn setup_refuses_a_mismatched_confirmation() -> TestResult {
    let app = spawn_app().await;
    let token = app.setup_token();
    let response = post_setup(&app, &token, OWNER, OWNER_PASS, "a different long password").await?;
    assert_eq!(response.status(), 303);
    assert!(
        location(&response).starts_with("/setup?error=password_mismatch"),
        "{}",
        location(&response)
    );
    assert_eq!(admin_count(&app).await?, 0);
    Ok(())
}

#[tokio::test]
async fn env_admin_skips_setup_and_stores_only_an_argon2id_hash() -> TestResult {
    let username = "env-operator";
    let password = "plain-text-must-never-be-stored";
    let app = spawn_app_with(|raw| with_env_admin(raw, username, password)).await;
    assert!(
        !app.data_dir().join(".setup-token").exists(),
        "no setup token when the admin comes from the environment"
    );
    assert_eq!(app.status().await?["hasAuthentication"], true);
    let hash = users::password_hash_of(&app.core().db, username)
        .await?
        .ok_or("the admin was not created")?;
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    // The database and its write-ahead log, as they lie on disk.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(app.data_dir())? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with("pulse.db") {
            bytes.extend(std::fs::read(entry.path())?);
        }
    }
    let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
    assert!(contains(username.as_bytes()), "the scan does not see the stored rows");
    assert!(!contains(password.as_bytes()), "the plain password is stored on disk");

    assert_eq!(app.login(username, password).await?.status(), 200);
    Ok(())
}
