//! Settings › Security › Authentication: password change, the hide-local-login toggle, unlock.
mod common;

use common::{location, spawn_app_with, spawn_app_with_admin, with_env_admin, ADMIN_PASS, ADMIN_USER};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PAGE: &str = "/settings/security/authentication";

#[tokio::test]
async fn changing_the_password_signs_out_the_other_sessions() -> TestResult {
    let app = spawn_app_with_admin().await;
    let other_session = app.login_as_admin().await?;
    app.login_as_admin().await?;
    let new_password = "a brand new long password";

    let response = app
        .post_form(
            &format!("{PAGE}/password"),
            &[
                ("current", ADMIN_PASS),
                ("new", new_password),
                ("confirm", new_password),
            ],
        )
        .await?;

    assert_eq!(location(&response), format!("{PAGE}?result=password_changed"));
    assert!(app.is_authenticated().await?, "the session that changed it stays");
    assert_eq!(app.status_with_cookie(&other_session).await?["authenticated"], false);
    assert_eq!(app.login(ADMIN_USER, ADMIN_PASS).await?.status(), 401);
    assert_eq!(app.login(ADMIN_USER, new_password).await?.status(), 200);
    Ok(())
}

#[tokio::test]
async fn a_wrong_current_password_or_a_weak_new_one_changes_nothing() -> TestResult {
    let app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let cases = [
        (
            ("not the password", "another long password", "another long password"),
            "error=wrong_current_password",
        ),
        ((ADMIN_PASS, "short", "short"), "error=password_short"),
        (
            (ADMIN_PASS, "another long password", "a different password"),
            "error=password_mismatch",
        ),
    ];
    for ((current, new, confirm), expected) in cases {
        let response = app
            .post_form(
                &format!("{PAGE}/password"),
                &[("current", current), ("new", new), ("confirm", confirm)],
            )
            .await?;
        assert_eq!(location(&response), format!("{PAGE}?{expected}"));
    }
    assert_eq!(
        app.login(ADMIN_USER, ADMIN_PASS).await?.status(),
        200,
        "the old password still works"
    );
    Ok(())
}

#[tokio::test]
async fn hiding_the_local_form_is_refused_while_sso_does_not_work() -> TestResult {
    let app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let response = app
        .post_form(&format!("{PAGE}/hide-local-login"), &[("hide", "true")])
        .await?;
    assert_eq!(location(&response), format!("{PAGE}?error=hide_requires_sso"));
    assert_eq!(app.status().await?["hideLocalLogin"], false);
    Ok(())
}

#[tokio::test]
async fn the_toggle_is_locked_when_the_environment_sets_it() -> TestResult {
    let app = spawn_app_with(|raw| {
        with_env_admin(raw, ADMIN_USER, ADMIN_PASS);
        raw.hide_local_login = Some("false".into());
    })
    .await;
    app.login_as_admin().await?;
    let response = app
        .post_form(&format!("{PAGE}/hide-local-login"), &[("hide", "true")])
        .await?;
    assert_eq!(location(&response), format!("{PAGE}?error=hide_env_managed"));
    Ok(())
}

#[tokio::test]
async fn an_admin_can_unlock_a_locked_account_and_anonymous_visitors_cannot() -> TestResult {
    use pulse_core::clock::Clock;
    use pulse_core::store::lockout;
    let app = spawn_app_with_admin().await;
    let core = app.core();
    let now = app.clock.now();
    for _ in 0..5 {
        lockout::record_failure(&core.db, "bob", "203.0.113.7", now).await?;
    }
    let is_locked = |locks: Vec<lockout::Lock>| locks.iter().any(|l| l.subject == "bob");
    assert!(is_locked(lockout::current_locks(&core.db, now).await?));

    let anonymous = app
        .post_form(&format!("{PAGE}/unlock"), &[("scope", "account"), ("subject", "bob")])
        .await?;
    assert!(location(&anonymous).starts_with("/login"), "{}", location(&anonymous));
    assert!(
        is_locked(lockout::current_locks(&core.db, now).await?),
        "anonymous visitors unlock nothing"
    );

    app.login_as_admin().await?;
    let response = app
        .post_form(&format!("{PAGE}/unlock"), &[("scope", "account"), ("subject", "bob")])
        .await?;
    assert_eq!(location(&response), format!("{PAGE}?result=unlocked"));
    assert!(!is_locked(lockout::current_locks(&core.db, now).await?));
    Ok(())
}
