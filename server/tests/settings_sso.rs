//! Settings › Security › Single sign-on (OIDC): who may read and change it, validation per field,
//! environment-managed fields, the write-only secret, persistence, partial updates, applying
//! without a restart, and Test connection against a provider misbehaving on purpose.
mod common;
mod oidc_support;

use common::{
    location, spawn_app_with, spawn_app_with_admin, with_env_admin, TestApp, TestResult, ADMIN_PASS, ADMIN_USER,
};
use oidc_support::*;
use serde_json::Value;

const PAGE: &str = "/settings/security/sso";

type AnyError = Box<dyn std::error::Error>;

/// Posts the SSO form as the hydrated page does and returns (status, reply).
async fn post_sso(app: &TestApp, fields: &[(&str, &str)]) -> Result<(u16, Value), AnyError> {
    let response = app.post_form_for_json(PAGE, fields).await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await?))
}

/// The screen as the page reads it (the `sso_settings` server function).
async fn screen(app: &TestApp) -> Result<Value, AnyError> {
    let response = app.post_form("/api/fn/sso_settings", &[]).await?;
    assert_eq!(response.status(), 200, "reading the SSO screen");
    Ok(response.json().await?)
}

fn field<'a>(screen: &'a Value, name: &str) -> &'a Value {
    screen["fields"]
        .as_array()
        .and_then(|fields| fields.iter().find(|f| f["name"] == name))
        .unwrap_or(&Value::Null)
}

fn errors_by_field(reply: &Value) -> Vec<String> {
    reply["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn check_line<'a>(reply: &'a Value, id: &str) -> &'a Value {
    reply["report"]["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["id"] == id))
        .unwrap_or(&Value::Null)
}

/// The form an admin fills in to use `op`.
fn provider_form<'a>(op_issuer: &'a str, secret: &'a str, intent: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("intent", intent),
        ("enabled_present", "1"),
        ("enabled", "true"),
        ("issuer_url", op_issuer),
        ("client_id", CLIENT_ID),
        ("client_secret", secret),
    ]
}

#[tokio::test]
async fn every_settings_endpoint_checks_the_role() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse_with(&op, &[("OIDC_ADMIN_GROUPS", "pulse-admins")], |raw| {
        with_env_admin(raw, ADMIN_USER, ADMIN_PASS)
    })
    .await;
    let viewer = Browser::new(&app)?;
    let landing = viewer.sign_in(&op, "/").await?;
    assert_eq!(viewer.assert_signed_in(&landing, "/").await?["user"]["role"], "viewer");
    let anonymous = Browser::new(&app)?;
    app.login_as_admin().await?;

    let pages = [
        "/settings/security/sso",
        "/settings/security/authentication",
        "/settings/security/audit",
    ];
    for page in pages {
        let response = anonymous.http().get(viewer.url(page)).send().await?;
        assert_eq!(response.status(), 303, "anonymous {page}");
        assert!(location(&response).starts_with("/login?returnTo="), "anonymous {page}");
        let response = viewer.http().get(viewer.url(page)).send().await?;
        assert_eq!(response.status(), 403, "viewer {page}");
        let response = app.get(page).await?;
        assert_eq!(response.status(), 200, "admin {page}");
    }

    let server_fns = ["/api/fn/sso_settings", "/api/fn/audit"];
    for path in server_fns {
        let body: &[(&str, &str)] = if path.ends_with("audit") { &[("page", "0")] } else { &[] };
        let as_anonymous = anonymous.http().post(viewer.url(path)).form(body).send().await?;
        assert_eq!(as_anonymous.status(), 401, "anonymous {path}");
        let as_viewer = viewer.http().post(viewer.url(path)).form(body).send().await?;
        assert_eq!(as_viewer.status(), 403, "viewer {path}");
        assert_eq!(app.post_form(path, body).await?.status(), 200, "admin {path}");
    }

    // The form posts: the SSO form (plain and JSON) and the Authentication screen's.
    let change = [("intent", "save"), ("display_name", "Hijacked")];
    let as_anonymous = anonymous.http().post(viewer.url(PAGE)).form(&change).send().await?;
    assert!(location(&as_anonymous).starts_with("/login"));
    let as_viewer = viewer
        .http()
        .post(viewer.url(PAGE))
        .header("accept", "application/json")
        .form(&change)
        .send()
        .await?;
    assert_eq!(as_viewer.status(), 403);
    let as_viewer_plain = viewer.http().post(viewer.url(PAGE)).form(&change).send().await?;
    assert_eq!(as_viewer_plain.status(), 403);
    for (path, form) in [
        (
            "/settings/security/authentication/hide-local-login",
            vec![("hide", "false")],
        ),
        (
            "/settings/security/authentication/unlock",
            vec![("scope", "ip"), ("subject", "203.0.113.9")],
        ),
    ] {
        let response = viewer.http().post(viewer.url(path)).form(&form).send().await?;
        assert!(location(&response).ends_with("error=forbidden"), "viewer {path}");
    }
    assert_eq!(field(&screen(&app).await?, "display_name")["value"], "Single Sign-On");
    Ok(())
}

#[tokio::test]
async fn invalid_fields_are_named_one_by_one_and_nothing_is_saved() -> TestResult {
    let app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let (status, reply) = post_sso(
        &app,
        &[
            ("intent", "save"),
            ("enabled_present", "1"),
            ("enabled", "true"),
            ("issuer_url", "http://auth.example.com/application/o/pulse/"),
            ("client_id", ""),
            ("logout_url", "not a url"),
            ("scopes", "profile email"),
            ("username_claim", "preferred username"),
            ("groups_claim", "realm_access..roles"),
            ("allowed_domains", "example.com\nexample com"),
            ("allowed_emails", "alice@example.com\nbob"),
            ("prompt", "sometimes"),
            ("display_name", "Sign in with authentik"),
        ],
    )
    .await?;
    assert_eq!(status, 422, "{reply}");
    assert_eq!(reply["outcome"], "invalid");
    assert_eq!(
        errors_by_field(&reply),
        [
            "issuer_url",
            "client_id",
            "logout_url",
            "scopes",
            "username_claim",
            "groups_claim",
            "allowed_domains",
            "allowed_emails",
            "prompt"
        ]
    );
    let after = screen(&app).await?;
    assert_eq!(after["enabled"], false);
    assert_eq!(
        field(&after, "display_name")["value"],
        "Single Sign-On",
        "the valid field was not saved either"
    );

    // Without JavaScript: 303 back to the page, which shows the typed values and the errors once.
    let response = app
        .post_form(
            PAGE,
            &[
                ("intent", "save"),
                ("issuer_url", "ftp://auth.example.com"),
                ("client_id", "typed-id"),
            ],
        )
        .await?;
    assert_eq!(location(&response), format!("{PAGE}?result=invalid"));
    let html = app.get(&format!("{PAGE}?result=invalid")).await?.text().await?;
    assert!(
        html.contains("ftp://auth.example.com"),
        "the typed value is shown again"
    );
    assert!(html.contains("The issuer URL must be a full URL"), "the error is shown");
    let flash = screen(&app).await?;
    assert!(flash["flash"].is_null(), "the result is shown once");
    Ok(())
}

#[tokio::test]
async fn fields_set_by_environment_variables_cannot_be_changed_through_the_form() -> TestResult {
    let app = spawn_app_with(|raw| {
        with_env_admin(raw, ADMIN_USER, ADMIN_PASS);
        raw.oidc_env = pulse_core::oidc::settings::OidcEnv::from_lookup(|name| match name {
            "OIDC_ISSUER_URL" => Some("https://env.example.com/application/o/pulse/".into()),
            "OIDC_CLIENT_SECRET" => Some("secret-from-env".into()),
            _ => None,
        });
    })
    .await;
    app.login_as_admin().await?;
    let view = screen(&app).await?;
    assert_eq!(field(&view, "issuer_url")["managed_by"], "OIDC_ISSUER_URL");
    assert_eq!(view["secret_managed_by"], "OIDC_CLIENT_SECRET");
    assert!(
        field(&view, "client_id")["managed_by"].is_null(),
        "other fields stay editable"
    );

    let (status, reply) = post_sso(
        &app,
        &[
            ("intent", "save"),
            ("issuer_url", "https://attacker.example.com/"),
            ("client_id", "pulse"),
        ],
    )
    .await?;
    assert_eq!(status, 422);
    assert_eq!(errors_by_field(&reply), ["issuer_url"]);
    let (status, reply) = post_sso(&app, &[("intent", "save"), ("client_secret", "other")]).await?;
    assert_eq!(
        (status, errors_by_field(&reply)),
        (422, vec!["client_secret".to_owned()])
    );
    let (status, _) = post_sso(&app, &[("intent", "clear_secret")]).await?;
    assert_eq!(status, 422);

    // The unmanaged field saves; the managed one keeps the environment's value.
    let (status, reply) = post_sso(&app, &[("intent", "save"), ("client_id", "pulse")]).await?;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("saved")), "{reply}");
    let view = screen(&app).await?;
    assert_eq!(
        field(&view, "issuer_url")["value"],
        "https://env.example.com/application/o/pulse/"
    );
    assert_eq!(field(&view, "client_id")["value"], "pulse");
    Ok(())
}

#[tokio::test]
async fn the_client_secret_is_write_only_and_never_stored_in_plaintext() -> TestResult {
    let app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let secret = "very-secret-value-0123456789";
    let (status, reply) = post_sso(
        &app,
        &[
            ("intent", "save"),
            ("issuer_url", "https://auth.example.com/"),
            ("client_id", "pulse"),
            ("client_secret", secret),
        ],
    )
    .await?;
    assert_eq!(status, 200, "{reply}");
    assert!(!reply.to_string().contains(secret));
    let view = screen(&app).await?;
    assert_eq!(view["secret_set"], true);
    assert!(!view.to_string().contains(secret));
    assert!(!app.get(PAGE).await?.text().await?.contains(secret));
    for (path, bytes) in all_file_bytes(app.data_dir())? {
        assert!(
            !contains(&bytes, secret.as_bytes()),
            "{} holds the secret",
            path.display()
        );
    }
    let audit = app.post_form("/api/fn/audit", &[("page", "0")]).await?.text().await?;
    assert!(audit.contains("client_secret"), "the change is audited by field name");
    assert!(!audit.contains(secret));

    // Blank keeps it; clearing removes it.
    post_sso(
        &app,
        &[("intent", "save"), ("client_secret", ""), ("client_id", "pulse-2")],
    )
    .await?;
    assert_eq!(screen(&app).await?["secret_set"], true);
    let (status, reply) = post_sso(&app, &[("intent", "clear_secret")]).await?;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("secret_cleared")));
    assert_eq!(reply["screen"]["secret_set"], false);
    Ok(())
}

#[tokio::test]
async fn every_field_survives_a_restart_and_a_partial_update_keeps_the_rest() -> TestResult {
    let mut app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let fields = [
        ("issuer_url", "https://auth.example.com/application/o/pulse/"),
        ("client_id", "pulse"),
        ("redirect_url", "https://pulse.example.com/api/oidc/callback"),
        (
            "logout_url",
            "https://auth.example.com/application/o/pulse/end-session/",
        ),
        ("scopes", "openid profile email offline_access groups"),
        ("display_name", "Sign in with authentik"),
        ("username_claim", "nickname"),
        ("email_claim", "mail"),
        ("groups_claim", "realm_access.roles"),
        ("allowed_groups", "authentik Admins\npulse-users"),
        ("allowed_domains", "example.com\nexample.org"),
        ("allowed_emails", "ops@example.net"),
        ("admin_groups", "authentik Admins"),
        ("prompt", "login"),
    ];
    let mut form = vec![("intent", "save"), ("enabled_present", "1")];
    form.extend(fields);
    let (status, reply) = post_sso(&app, &form).await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["outcome"], "saved");

    app.restart().await;
    app.login_as_admin().await?;
    let view = screen(&app).await?;
    for (name, value) in fields {
        assert_eq!(field(&view, name)["value"], value, "{name} after a restart");
    }

    // Only one field sent: the others keep their values; enabled is untouched (not sent).
    let (status, _) = post_sso(&app, &[("intent", "save"), ("display_name", "Company SSO")]).await?;
    assert_eq!(status, 200);
    let view = screen(&app).await?;
    assert_eq!(field(&view, "display_name")["value"], "Company SSO");
    for (name, value) in fields.iter().filter(|(name, _)| *name != "display_name") {
        assert_eq!(field(&view, name)["value"], *value, "{name} after a partial update");
    }
    Ok(())
}

#[tokio::test]
async fn settings_saved_in_the_screen_apply_at_once_and_sso_sign_in_works() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let issuer = op.issuer();
    let (status, reply) = post_sso(&app, &provider_form(&issuer, CLIENT_SECRET, "save")).await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["screen"]["active"], true, "in force without a restart");
    let browser = Browser::new(&app)?;
    let landing = browser.sign_in(&op, "/").await?;
    browser.assert_signed_in(&landing, "/").await?;

    // A changed client ID applies at once too: the next sign-in uses it (and the OP refuses it).
    post_sso(&app, &[("intent", "save"), ("client_id", "some-other-client")]).await?;
    let again = Browser::new(&app)?;
    let authorize = again.begin(&op, "/").await?;
    assert!(authorize
        .query_pairs()
        .any(|(k, v)| k == "client_id" && v == "some-other-client"));
    Ok(())
}

#[tokio::test]
async fn test_connection_passes_against_a_working_provider_and_unlocks_hiding_the_form() -> TestResult {
    let op = TestOp::start().await?;
    let mut app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let issuer = op.issuer();
    post_sso(&app, &provider_form(&issuer, CLIENT_SECRET, "save")).await?;

    let hide = [("hide", "true")];
    let refused = app
        .post_form("/settings/security/authentication/hide-local-login", &hide)
        .await?;
    assert!(
        location(&refused).ends_with("error=hide_requires_sso"),
        "not tested yet"
    );

    let (status, reply) = post_sso(&app, &[("intent", "test")]).await?;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["report"]["passed"], true, "{reply}");
    for id in ["discovery", "issuer", "jwks", "rs256", "client", "end_session"] {
        assert_eq!(check_line(&reply, id)["status"], "passed", "{id}: {reply}");
    }
    let requests = op.record().token_requests;
    assert_eq!(requests.len(), 1, "one deliberately invalid code was sent");
    assert!(requests[0].form["code"].starts_with("pulse-connection-test-"));
    assert!(screen(&app).await?["verified_at"].is_number());

    let accepted = app
        .post_form("/settings/security/authentication/hide-local-login", &hide)
        .await?;
    assert!(location(&accepted).ends_with("result=saved"), "{}", location(&accepted));
    assert_eq!(app.status().await?["hideLocalLogin"], true);
    app.restart().await;
    assert_eq!(
        app.status().await?["hideLocalLogin"],
        true,
        "still hidden after a restart"
    );
    app.login_as_admin().await?;

    // A new secret has not been tested: the record no longer vouches for the settings in force.
    post_sso(&app, &[("intent", "save"), ("client_secret", "a-new-untested-secret")]).await?;
    assert!(screen(&app).await?["verified_at"].is_null());
    Ok(())
}

#[tokio::test]
async fn test_connection_uses_unsaved_values_and_explains_each_failure() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let issuer = op.issuer();

    // Wrong secret: the provider answers invalid_client.
    let (_, reply) = post_sso(&app, &provider_form(&issuer, "not-the-secret", "test")).await?;
    assert_eq!(reply["report"]["passed"], false);
    assert_eq!(check_line(&reply, "client")["status"], "failed", "{reply}");
    assert!(check_line(&reply, "client")["detail"]
        .as_str()
        .unwrap_or_default()
        .contains("invalid_client"));
    assert_eq!(screen(&app).await?["enabled"], false, "testing saves nothing");

    // The provider's issuer ends in a slash, the entered one does not.
    op.set(|b| b.discovery_issuer = Some(format!("{}/", op.issuer())));
    let (_, reply) = post_sso(&app, &provider_form(&issuer, CLIENT_SECRET, "test")).await?;
    let line = check_line(&reply, "issuer");
    assert_eq!(line["status"], "failed");
    assert!(
        line["detail"].as_str().unwrap_or_default().contains("trailing slash"),
        "{line}"
    );
    op.set(|b| b.discovery_issuer = None);

    // Only HS256 offered.
    op.set(|b| b.id_token_algs = vec!["HS256"]);
    let (_, reply) = post_sso(&app, &provider_form(&issuer, CLIENT_SECRET, "test")).await?;
    assert_eq!(check_line(&reply, "rs256")["status"], "failed");
    assert!(check_line(&reply, "rs256")["fix"]
        .as_str()
        .unwrap_or_default()
        .contains("RS256"));
    op.set(|b| b.id_token_algs = vec!["RS256"]);

    // Nothing listens at the issuer.
    let dead = format!("http://{}", closed_port().await?);
    let (_, reply) = post_sso(&app, &provider_form(&dead, CLIENT_SECRET, "test")).await?;
    assert_eq!(check_line(&reply, "discovery")["status"], "failed");
    assert_eq!(check_line(&reply, "client")["status"], "skipped");

    // Invalid input is refused before anything is fetched.
    let (status, reply) = post_sso(&app, &[("intent", "test"), ("issuer_url", "auth.example.com")]).await?;
    assert_eq!(status, 422);
    assert_eq!(errors_by_field(&reply), ["issuer_url", "client_id"]);
    Ok(())
}

#[tokio::test]
async fn the_screen_shows_the_redirect_url_that_sign_in_sends() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let issuer = op.issuer();
    post_sso(&app, &provider_form(&issuer, CLIENT_SECRET, "save")).await?;
    let shown = screen(&app).await?["redirect_url_sent"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert_eq!(shown, app.url("/api/oidc/callback"));
    let authorize = Browser::new(&app)?.begin(&op, "/").await?;
    let sent = authorize
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    assert_eq!(sent.as_deref(), Some(shown.as_str()));
    Ok(())
}

#[tokio::test]
async fn inline_validation_reports_errors_without_saving() -> TestResult {
    let app = spawn_app_with_admin().await;
    app.login_as_admin().await?;
    let (status, reply) = post_sso(&app, &[("intent", "validate"), ("scopes", "profile")]).await?;
    assert_eq!((status, errors_by_field(&reply)), (200, vec!["scopes".to_owned()]));
    let (_, reply) = post_sso(&app, &[("intent", "validate"), ("scopes", "openid profile")]).await?;
    assert!(errors_by_field(&reply).is_empty());
    assert_eq!(field(&screen(&app).await?, "scopes")["value"], "openid profile email");
    Ok(())
}

#[tokio::test]
async fn settings_opens_on_its_first_screen() -> TestResult {
    let app = spawn_app_with_admin().await;
    let anonymous = app.get("/settings").await?;
    assert!(
        location(&anonymous).starts_with("/login?returnTo="),
        "{}",
        location(&anonymous)
    );
    app.login_as_admin().await?;
    for path in ["/settings", "/settings/security"] {
        let response = app.get(path).await?;
        assert_eq!(location(&response), "/settings/security/authentication", "{path}");
    }
    Ok(())
}
