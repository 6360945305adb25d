//! Pulse as an OpenID Connect relying party, driven like a browser against a test provider that
//! each test misbehaves on purpose. Tests named `rp_*` follow the OpenID Foundation's RP
//! certification cases of the same id; the rest cover state binding, returnTo, policy and storage.
mod common;
mod oidc_support;

use std::collections::HashMap;

use common::TestResult;
use oidc_support::*;
use serde_json::{json, Value};

/// A provider changed by `change`, a Pulse using it with `env`, and a browser that signed in once.
async fn sign_in_once(
    change: impl FnOnce(&mut OpBehaviour),
    env: &[(&str, &str)],
) -> Result<(TestOp, common::TestApp, Browser, Landing), Box<dyn std::error::Error>> {
    let op = TestOp::start().await?;
    op.set(change);
    let app = spawn_pulse(&op, env).await;
    let browser = Browser::new(&app)?;
    let landing = browser.sign_in(&op, "/wanted").await?;
    Ok((op, app, browser, landing))
}

/// Asserts that a provider changed by `change` gets the sign-in refused with `code`.
async fn refused_with(change: impl FnOnce(&mut OpBehaviour), code: &str) -> TestResult {
    let (_op, _app, browser, landing) = sign_in_once(change, &[]).await?;
    browser.assert_refused(&landing, code).await
}

async fn accepted_with(change: impl FnOnce(&mut OpBehaviour)) -> Result<Value, Box<dyn std::error::Error>> {
    let (_op, _app, browser, landing) = sign_in_once(change, &[]).await?;
    browser.assert_signed_in(&landing, "/wanted").await
}

// ---------------------------------------------------------------------------------------------
// The code flow

#[tokio::test]
async fn rp_response_type_code() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;

    let authorize_url = browser.begin(&op, "/wanted").await?;
    let query: HashMap<String, String> = authorize_url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43, "base64url of a SHA-256");
    assert!(
        query["scope"].split(' ').any(|scope| scope == "openid"),
        "{}",
        query["scope"]
    );
    assert!(query["state"].len() >= 16 && query["nonce"].len() >= 16, "{query:?}");
    assert_eq!(query["redirect_uri"], app.url("/api/oidc/callback"));

    let landing = browser.follow(&browser.authorize(&authorize_url).await?).await?;
    let status = browser.assert_signed_in(&landing, "/wanted").await?;
    assert_eq!(status["user"]["username"], "alice");
    assert_eq!(status["user"]["email"], "alice@example.com");
    assert_eq!(status["user"]["groups"], json!(["pulse-users"]));
    assert_eq!(
        status["user"]["role"], "admin",
        "no admin groups configured: every SSO user is admin"
    );
    Ok(())
}

#[tokio::test]
async fn rp_token_endpoint_client_secret_basic() -> TestResult {
    let (op, _app, browser, landing) = sign_in_once(|_| {}, &[]).await?;
    browser.assert_signed_in(&landing, "/wanted").await?;

    let record = op.record();
    assert_eq!(record.token_requests.len(), 1);
    let request = &record.token_requests[0];
    assert_eq!(request.authorization, Some(basic_auth(CLIENT_ID, CLIENT_SECRET)));
    assert!(
        !request.form.contains_key("client_secret"),
        "the secret goes in the header only"
    );
    assert_eq!(
        request.form.get("grant_type").map(String::as_str),
        Some("authorization_code")
    );
    assert!(
        request.form.get("code_verifier").is_some_and(|v| v.len() >= 43),
        "PKCE verifier sent"
    );
    Ok(())
}

#[tokio::test]
async fn rp_nonce_invalid() -> TestResult {
    refused_with(
        |b| b.claim("nonce", json!("not-the-nonce-pulse-sent")),
        "nonce_mismatch",
    )
    .await?;
    refused_with(|b| b.claim("nonce", Value::Null), "nonce_mismatch").await
}

// ---------------------------------------------------------------------------------------------
// ID token claims

#[tokio::test]
async fn rp_id_token_aud() -> TestResult {
    refused_with(|b| b.claim("aud", json!("another-client")), "audience_mismatch").await?;
    refused_with(|b| b.claim("aud", json!(["another-client"])), "audience_mismatch").await
}

#[tokio::test]
async fn aud_as_a_one_element_array_is_accepted() -> TestResult {
    accepted_with(|b| b.claims([("aud", json!([CLIENT_ID])), ("azp", json!(CLIENT_ID))])).await?;
    Ok(())
}

#[tokio::test]
async fn azp_naming_another_client_is_audience_mismatch() -> TestResult {
    // Several audiences and azp naming someone else.
    refused_with(
        |b| {
            b.claims([
                ("aud", json!([CLIENT_ID, "another-client"])),
                ("azp", json!("another-client")),
            ])
        },
        "audience_mismatch",
    )
    .await?;
    // One audience, but azp still names someone else (OpenID Connect Core §3.1.3.7 step 5).
    refused_with(|b| b.claim("azp", json!("another-client")), "audience_mismatch").await
}

#[tokio::test]
async fn extra_untrusted_audience_is_refused_even_with_our_azp() -> TestResult {
    // Core §3.1.3.7 step 3: reject "additional audiences not trusted by the Client". Pulse trusts none.
    refused_with(
        |b| b.claims([("aud", json!([CLIENT_ID, "another-client"])), ("azp", json!(CLIENT_ID))]),
        "audience_mismatch",
    )
    .await
}

#[tokio::test]
async fn rp_id_token_iat() -> TestResult {
    refused_with(|b| b.claim("iat", Value::Null), "invalid_id_token").await
}

#[tokio::test]
async fn rp_id_token_sub() -> TestResult {
    refused_with(|b| b.claim("sub", Value::Null), "invalid_id_token").await
}

#[tokio::test]
async fn rp_id_token_issuer_mismatch() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    for wrong in ["https://evil.example".to_owned(), format!("{}/", op.issuer())] {
        op.set(|b| b.claim("iss", json!(wrong)));
        let landing = browser.sign_in(&op, "/wanted").await?;
        browser.assert_refused(&landing, "issuer_mismatch").await?;
    }
    Ok(())
}

#[tokio::test]
async fn expired_id_token_is_token_expired() -> TestResult {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    refused_with(
        |b| b.claims([("iat", json!(now - 7200)), ("exp", json!(now - 3600))]),
        "token_expired",
    )
    .await
}

#[tokio::test]
async fn at_hash_not_matching_the_access_token_is_refused() -> TestResult {
    refused_with(|b| b.at_hash = AtHash::Wrong, "invalid_id_token").await
}

#[tokio::test]
async fn at_hash_matching_the_access_token_is_accepted() -> TestResult {
    accepted_with(|b| b.at_hash = AtHash::Correct).await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Signatures and keys

#[tokio::test]
async fn rp_id_token_bad_sig_rs256() -> TestResult {
    refused_with(|b| b.signature = Signature::Rs256Tampered, "invalid_signature").await?;
    // Signed by a key the provider does not publish, under a published kid.
    refused_with(|b| b.sign_with = TestKey::C, "invalid_signature").await
}

#[tokio::test]
async fn rp_id_token_sig_none() -> TestResult {
    refused_with(|b| b.signature = Signature::Unsigned, "invalid_signature").await
}

#[tokio::test]
async fn hs256_keyed_with_the_client_secret_is_refused() -> TestResult {
    refused_with(|b| b.signature = Signature::Hs256WithClientSecret, "invalid_signature").await
}

#[tokio::test]
async fn rp_id_token_kid_absent_single_jwks() -> TestResult {
    accepted_with(|b| b.kid_in_header = false).await?;
    Ok(())
}

/// Pulse fails closed here: without a kid it will not guess among several keys (Core §10.1
/// requires a kid when the JWKS holds more than one), so no sign-in happens.
#[tokio::test]
async fn rp_id_token_kid_absent_multiple_jwks() -> TestResult {
    refused_with(
        |b| {
            b.kid_in_header = false;
            b.published = vec![TestKey::A, TestKey::B];
        },
        "invalid_signature",
    )
    .await
}

#[tokio::test]
async fn rp_key_rotation_op_sign_key() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let first = Browser::new(&app)?;
    first
        .assert_signed_in(&first.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;
    assert_eq!(op.record().jwks_fetches, 1);

    op.set(|b| {
        b.published = vec![TestKey::B];
        b.sign_with = TestKey::B;
    });
    let second = Browser::new(&app)?;
    second
        .assert_signed_in(&second.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;
    assert_eq!(
        op.record().jwks_fetches,
        2,
        "the unknown kid made Pulse fetch the keys again"
    );
    Ok(())
}

#[tokio::test]
async fn key_refetch_is_rate_limited_then_picks_up_the_published_key() -> TestResult {
    let op = TestOp::start().await?;
    op.set(|b| b.sign_with = TestKey::B); // not yet in the JWKS
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    browser
        .assert_refused(&browser.sign_in(&op, "/wanted").await?, "invalid_signature")
        .await?;
    assert_eq!(op.record().jwks_fetches, 2, "one refetch for the unknown kid");

    op.set(|b| b.published = vec![TestKey::A, TestKey::B]);
    browser
        .assert_refused(&browser.sign_in(&op, "/wanted").await?, "invalid_signature")
        .await?;
    assert_eq!(op.record().jwks_fetches, 2, "a second refetch within 30 s is refused");

    app.clock.advance(time::Duration::seconds(31));
    browser
        .assert_signed_in(&browser.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;
    assert_eq!(op.record().jwks_fetches, 3);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Userinfo

#[tokio::test]
async fn rp_userinfo_bad_sub_claim() -> TestResult {
    let (op, _app, browser, landing) = sign_in_once(
        |b| {
            b.claim("groups", Value::Null);
            b.userinfo_claim("sub", json!("somebody-else"));
        },
        &[],
    )
    .await?;
    assert_eq!(
        op.record().userinfo_authorizations.len(),
        1,
        "userinfo was asked for the missing groups"
    );
    browser.assert_refused(&landing, "invalid_id_token").await
}

#[tokio::test]
async fn rp_userinfo_bearer_header() -> TestResult {
    let (op, _app, browser, landing) = sign_in_once(
        |b| {
            b.claim("groups", Value::Null);
            b.userinfo_claim("groups", json!(["from-userinfo"]));
        },
        &[],
    )
    .await?;
    let status = browser.assert_signed_in(&landing, "/wanted").await?;
    assert_eq!(status["user"]["groups"], json!(["from-userinfo"]));
    let record = op.record();
    let expected = format!("Bearer {}", record.issued[0].access_token);
    assert_eq!(record.userinfo_authorizations, vec![Some(expected)]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Discovery and the provider's endpoints

#[tokio::test]
async fn rp_discovery_issuer_not_matching_config() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    for claimed in [format!("{}/elsewhere", op.issuer()), format!("{}/", op.issuer())] {
        op.set(|b| b.discovery_issuer = Some(claimed.clone()));
        let landing = browser.follow("/api/oidc/login?returnTo=/wanted").await?;
        browser.assert_refused(&landing, "issuer_mismatch").await?;
    }
    assert!(
        op.record().authorize_requests.is_empty(),
        "the browser never went to the provider"
    );

    // The other way round: configured with a trailing slash the provider does not use.
    let slashed = spawn_pulse(&op, &[("OIDC_ISSUER_URL", &format!("{}/", op.issuer()))]).await;
    op.set(|b| b.discovery_issuer = None);
    let browser = Browser::new(&slashed)?;
    browser
        .assert_refused(
            &browser.follow("/api/oidc/login?returnTo=/wanted").await?,
            "issuer_mismatch",
        )
        .await
}

#[tokio::test]
async fn provider_down_at_login_is_provider_unavailable() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[("OIDC_ISSUER_URL", &format!("http://{}", closed_port().await?))]).await;
    let browser = Browser::new(&app)?;
    browser
        .assert_refused(
            &browser.follow("/api/oidc/login?returnTo=/wanted").await?,
            "provider_unavailable",
        )
        .await
}

#[tokio::test]
async fn callback_iss_parameter_must_name_the_configured_issuer() -> TestResult {
    let (op, app, browser, landing) =
        sign_in_once(|b| b.authorize_iss = Some("https://evil.example".into()), &[]).await?;
    browser.assert_refused(&landing, "issuer_mismatch").await?;
    assert!(
        op.record().token_requests.is_empty(),
        "a mixed-up code is never redeemed"
    );

    op.set(|b| b.authorize_iss = Some(op.issuer()));
    let browser = Browser::new(&app)?;
    browser
        .assert_signed_in(&browser.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;
    Ok(())
}

#[tokio::test]
async fn idp_access_denied_is_shown_with_its_description() -> TestResult {
    let (op, _app, browser, landing) = sign_in_once(
        |b| b.authorize_error = Some(("access_denied".into(), "The user said no".into())),
        &[],
    )
    .await?;
    browser.assert_refused(&landing, "idp_error").await?;
    assert_eq!(
        landing.param("oidc_error_description").as_deref(),
        Some("The user said no")
    );
    assert!(op.record().token_requests.is_empty());
    Ok(())
}

#[tokio::test]
async fn token_endpoint_failing_is_exchange_failed() -> TestResult {
    let failures = [
        (
            "application/json",
            r#"{"error":"server_error","error_description":"boom"}"#,
        ),
        ("text/plain", "Internal Server Error"),
        ("text/html", "<html><body>502 Bad Gateway</body></html>"),
    ];
    for (content_type, body) in failures {
        let failure = TokenFailure {
            status: 500,
            content_type,
            body: body.to_owned(),
        };
        refused_with(|b| b.token_failure = Some(failure), "exchange_failed").await?;
    }
    Ok(())
}

#[tokio::test]
async fn token_endpoint_unreachable_is_provider_unavailable() -> TestResult {
    let nowhere = format!("http://{}/token", closed_port().await?);
    refused_with(|b| b.token_endpoint = Some(nowhere), "provider_unavailable").await
}

// ---------------------------------------------------------------------------------------------
// State: single use, bound to the browser that started the sign-in

#[tokio::test]
async fn tampered_state_is_invalid_state_and_the_real_callback_still_works() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    let callback = browser.authorize(&browser.begin(&op, "/wanted").await?).await?;
    let mut tampered = reqwest::Url::parse(&callback)?;
    let pairs: Vec<(String, String)> = tampered
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" { format!("{v}x") } else { v.into_owned() };
            (k.into_owned(), v)
        })
        .collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);

    browser
        .assert_refused(&browser.follow(tampered.as_str()).await?, "invalid_state")
        .await?;
    assert!(op.record().token_requests.is_empty());
    browser
        .assert_signed_in(&browser.follow(&callback).await?, "/wanted")
        .await?;
    Ok(())
}

#[tokio::test]
async fn replayed_callback_is_invalid_state() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    let callback = browser.authorize(&browser.begin(&op, "/wanted").await?).await?;
    browser
        .assert_signed_in(&browser.follow(&callback).await?, "/wanted")
        .await?;

    let replay = browser.follow(&callback).await?;
    assert_eq!(replay.error().as_deref(), Some("invalid_state"), "{}", replay.location);
    assert_eq!(
        op.record().token_requests.len(),
        1,
        "the replayed code was not redeemed again"
    );

    let stranger = Browser::new(&app)?;
    stranger
        .assert_refused(&stranger.follow(&callback).await?, "invalid_state")
        .await
}

#[tokio::test]
async fn callback_in_another_browser_is_invalid_state() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let victim = Browser::new(&app)?;
    let callback = victim.authorize(&victim.begin(&op, "/wanted").await?).await?;

    let attacker = Browser::new(&app)?;
    attacker
        .assert_refused(&attacker.follow(&callback).await?, "invalid_state")
        .await?;
    assert!(
        op.record().token_requests.is_empty(),
        "the code was not redeemed for the other browser"
    );
    victim
        .assert_signed_in(&victim.follow(&callback).await?, "/wanted")
        .await?;
    Ok(())
}

#[tokio::test]
async fn session_id_changes_at_sso_sign_in() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    let callback = browser.authorize(&browser.begin(&op, "/wanted").await?).await?;
    let before = browser
        .session_cookie()
        .ok_or("starting a sign-in sets a session cookie")?;
    browser
        .assert_signed_in(&browser.follow(&callback).await?, "/wanted")
        .await?;
    let after = browser.session_cookie().ok_or("signed in without a session cookie")?;
    assert_ne!(before, after, "the session id is rotated at sign-in");

    let anonymous = app.status_with_cookie(&before).await?;
    assert_eq!(
        anonymous["authenticated"], false,
        "the pre-login session id is worth nothing"
    );
    Ok(())
}

#[tokio::test]
async fn callback_after_ten_minutes_is_invalid_state() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    let callback = browser.authorize(&browser.begin(&op, "/wanted").await?).await?;
    app.clock.advance(time::Duration::minutes(11));
    browser
        .assert_refused(&browser.follow(&callback).await?, "invalid_state")
        .await
}

#[tokio::test]
async fn garbage_callbacks_go_to_the_login_page_never_a_5xx() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    // A sign-in in flight, so the session holds a pending state that garbage must not match.
    browser.begin(&op, "/wanted").await?;
    // Big, yet within what an HTTP URI may hold (64 KiB).
    let huge = "A".repeat(20_000);
    let cases = [
        "/api/oidc/callback".to_owned(),
        "/api/oidc/callback?".to_owned(),
        "/api/oidc/callback?%%%".to_owned(),
        "/api/oidc/callback?state=".to_owned(),
        "/api/oidc/callback?state=&code=".to_owned(),
        "/api/oidc/callback?code=abc".to_owned(),
        "/api/oidc/callback?state=%ff%fe%00&code=%c3%28".to_owned(),
        "/api/oidc/callback?state=a&state=b&code=c&code=d".to_owned(),
        "/api/oidc/callback?error=access_denied".to_owned(),
        "/api/oidc/callback?error=access_denied&state=unknown&error_description=%3Cscript%3E".to_owned(),
        format!("/api/oidc/callback?state={huge}&code={huge}"),
        format!("/api/oidc/callback?error={huge}&error_description={huge}"),
    ];
    for case in &cases {
        let landing = browser.follow(case).await?;
        let shown = &case[..case.len().min(80)];
        assert_eq!(
            landing.error().as_deref(),
            Some("invalid_state"),
            "{shown} landed on {}",
            landing.location
        );
    }
    assert!(!browser.is_signed_in().await?);
    assert!(op.record().token_requests.is_empty());
    Ok(())
}

#[tokio::test]
async fn return_to_pointing_elsewhere_lands_on_the_home_page() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    for evil in [
        "//evil.example",
        "https://evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ] {
        let browser = Browser::new(&app)?;
        let landing = browser.sign_in(&op, evil).await?;
        browser.assert_signed_in(&landing, "/").await?;
    }
    let browser = Browser::new(&app)?;
    browser
        .assert_signed_in(
            &browser.sign_in(&op, "/settings/security?tab=sso").await?,
            "/settings/security?tab=sso",
        )
        .await?;
    Ok(())
}

#[tokio::test]
async fn two_tabs_completed_in_reverse_order_both_sign_in() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    let first = browser.begin(&op, "/first").await?;
    let second = browser.begin(&op, "/second").await?;
    let state = |url: &reqwest::Url| {
        url.query_pairs()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
    };
    assert_ne!(state(&first), state(&second), "each sign-in has its own state");
    let (first_callback, second_callback) = (browser.authorize(&first).await?, browser.authorize(&second).await?);

    browser
        .assert_signed_in(&browser.follow(&second_callback).await?, "/second")
        .await?;
    browser
        .assert_signed_in(&browser.follow(&first_callback).await?, "/first")
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Access policy and claim mapping

#[tokio::test]
async fn allowed_groups_match_case_insensitively_and_fail_closed() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[("OIDC_ALLOWED_GROUPS", "Pulse-Users, ops")]).await;
    let member = Browser::new(&app)?;
    member
        .assert_signed_in(&member.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;

    op.set(|b| b.claim("groups", json!(["staff"])));
    let outsider = Browser::new(&app)?;
    outsider
        .assert_refused(&outsider.sign_in(&op, "/wanted").await?, "group_restricted")
        .await?;

    // Neither the ID token nor userinfo says anything about groups.
    op.set(|b| b.claim("groups", Value::Null));
    let unknown = Browser::new(&app)?;
    unknown
        .assert_refused(&unknown.sign_in(&op, "/wanted").await?, "group_restricted")
        .await
}

#[tokio::test]
async fn allowed_domains_compare_the_whole_domain() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[("OIDC_ALLOWED_DOMAINS", "example.com")]).await;
    for (email, verdict) in [
        ("alice@example.com.evil.org", Some("domain_restricted")),
        ("alice@sub.example.com", Some("domain_restricted")),
        ("example.com@evil.org", Some("domain_restricted")),
        ("alice@EXAMPLE.com", None),
    ] {
        op.set(|b| b.claim("email", json!(email)));
        let browser = Browser::new(&app)?;
        let landing = browser.sign_in(&op, "/wanted").await?;
        match verdict {
            Some(code) => browser.assert_refused(&landing, code).await?,
            None => {
                browser.assert_signed_in(&landing, "/wanted").await?;
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn allowed_emails_are_exact() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[("OIDC_ALLOWED_EMAILS", "alice@example.com")]).await;
    for (email, allowed) in [
        ("bob@example.com", false),
        ("alice@example.com.evil.org", false),
        ("ALICE@example.com", true),
    ] {
        op.set(|b| b.claim("email", json!(email)));
        let browser = Browser::new(&app)?;
        let landing = browser.sign_in(&op, "/wanted").await?;
        if allowed {
            browser.assert_signed_in(&landing, "/wanted").await?;
        } else {
            browser.assert_refused(&landing, "email_restricted").await?;
        }
    }
    op.set(|b| b.claim("email", Value::Null));
    let browser = Browser::new(&app)?;
    browser
        .assert_refused(&browser.sign_in(&op, "/wanted").await?, "email_restricted")
        .await
}

#[tokio::test]
async fn admin_groups_decide_the_role() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[("OIDC_ADMIN_GROUPS", "pulse-admins")]).await;
    op.set(|b| {
        b.claims([
            ("sub", json!("admin-1")),
            ("groups", json!(["pulse-users", "Pulse-Admins"])),
        ])
    });
    let admin = Browser::new(&app)?;
    let status = admin
        .assert_signed_in(&admin.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;
    assert_eq!(status["user"]["role"], "admin");

    op.set(|b| b.claims([("sub", json!("viewer-1")), ("groups", json!(["pulse-users"]))]));
    let viewer = Browser::new(&app)?;
    let status = viewer
        .assert_signed_in(&viewer.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;
    assert_eq!(status["user"]["role"], "viewer");
    Ok(())
}

#[tokio::test]
async fn groups_from_a_nested_claim_path() -> TestResult {
    let op = TestOp::start().await?;
    let env = [
        ("OIDC_GROUPS_CLAIM", "realm_access.roles"),
        ("OIDC_ALLOWED_GROUPS", "pulse-users"),
    ];
    let app = spawn_pulse(&op, &env).await;
    op.set(|b| {
        b.claims([
            ("groups", json!(["other"])),
            ("realm_access", json!({ "roles": ["pulse-users"] })),
        ])
    });
    let browser = Browser::new(&app)?;
    let status = browser
        .assert_signed_in(&browser.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;
    assert_eq!(status["user"]["groups"], json!(["pulse-users"]));

    op.set(|b| {
        b.claims([
            ("groups", json!(["pulse-users"])),
            ("realm_access", json!({ "roles": ["other"] })),
        ])
    });
    let browser = Browser::new(&app)?;
    browser
        .assert_refused(&browser.sign_in(&op, "/wanted").await?, "group_restricted")
        .await
}

// ---------------------------------------------------------------------------------------------
// Accounts and storage

#[tokio::test]
async fn sso_user_is_keyed_by_issuer_and_subject() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    let browser = Browser::new(&app)?;
    browser
        .assert_signed_in(&browser.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;
    let before = sso_users(&app).await?;

    op.set(|b| b.claim("preferred_username", json!("alice.renamed")));
    let browser = Browser::new(&app)?;
    let status = browser
        .assert_signed_in(&browser.sign_in(&op, "/wanted").await?, "/wanted")
        .await?;
    assert_eq!(status["user"]["username"], "alice.renamed");
    let after = sso_users(&app).await?;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].0, before[0].0, "the same account, renamed");
    assert_eq!(
        (after[0].1.as_str(), after[0].2.as_str(), after[0].3.as_str()),
        ("alice.renamed", op.issuer().as_str(), DEFAULT_SUB)
    );
    Ok(())
}

#[tokio::test]
async fn tokens_are_never_stored_in_plaintext() -> TestResult {
    let (op, app, browser, landing) = sign_in_once(|_| {}, &[]).await?;
    browser.assert_signed_in(&landing, "/wanted").await?;
    let issued = op.record().issued[0].clone();
    let refresh_token = issued.refresh_token.ok_or("the provider issued a refresh token")?;
    let signature = issued.id_token.rsplit('.').next().unwrap_or_default().to_owned();

    let files = all_file_bytes(app.data_dir())?;
    let everything: Vec<u8> = files.iter().flat_map(|(_, bytes)| bytes.iter().copied()).collect();
    // The scan must see what Pulse stores: the account name is there in plain text.
    assert!(
        contains(&everything, b"alice"),
        "scanned {:?}",
        files.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    for (name, secret) in [
        ("refresh token", refresh_token.as_str()),
        ("access token", issued.access_token.as_str()),
        ("ID token", issued.id_token.as_str()),
        ("ID token signature", signature.as_str()),
        ("client secret", CLIENT_SECRET),
    ] {
        for (path, bytes) in &files {
            assert!(
                !contains(bytes, secret.as_bytes()),
                "the {name} is in plain text in {}",
                path.display()
            );
        }
    }
    Ok(())
}
