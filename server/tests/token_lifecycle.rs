//! An SSO session after sign-in: refreshing its tokens (rotation, one grant for many concurrent
//! requests, refusals, outages, policy changes), signing out at the provider, back-channel logout,
//! the session registry, and what reaches the disk. Time moves by the manual clock, never by sleeping.
mod common;
mod oidc_support;

use std::time::Duration;

use pulse_core::clock::Clock;
use reqwest::{header, StatusCode, Url};
use serde_json::{json, Value};

use common::{with_env_admin, TestApp, TestResult, ADMIN_PASS, ADMIN_USER};
use oidc_support::*;

type AnyError = Box<dyn std::error::Error>;

/// `expires_in` of the provider's access tokens. Pulse refreshes a fifth of the lifetime early
/// (at most five minutes), so a token issued at t is due at t + 48 s and expired at t + 60 s.
const ACCESS_LIFETIME: u64 = 60;
const DUE_AFTER: i64 = 48;

/// Asking for offline access, as real providers want before they hand out refresh tokens.
const OFFLINE_SCOPES: (&str, &str) = ("OIDC_SCOPES", "openid profile email offline_access");

/// How long a test waits for something that should happen at once, before calling it a failure.
const PROMPTLY: Duration = Duration::from_secs(10);

fn seconds(count: i64) -> time::Duration {
    time::Duration::seconds(count)
}

/// A provider handing out 60-second access tokens and refresh tokens (changed by `change`), a
/// Pulse using it with `env` whose clock the provider follows, and a browser signed in by SSO.
async fn signed_in(
    env: &[(&str, &str)],
    change: impl FnOnce(&mut OpBehaviour),
) -> Result<(TestOp, TestApp, Browser), AnyError> {
    let op = TestOp::start().await?;
    op.set(|b| {
        b.expires_in = ACCESS_LIFETIME;
        change(b);
    });
    let mut all = vec![OFFLINE_SCOPES];
    all.extend_from_slice(env);
    let app = spawn_pulse(&op, &all).await;
    op.follow_clock(&app.clock);
    let browser = new_signed_in_browser(&op, &app).await?;
    Ok((op, app, browser))
}

/// Another browser (another device) signed in to `app` through `op` as the provider says now.
async fn new_signed_in_browser(op: &TestOp, app: &TestApp) -> Result<Browser, AnyError> {
    let browser = Browser::new(app)?;
    let landing = browser.sign_in(op, "/wanted").await?;
    browser.assert_signed_in(&landing, "/wanted").await?;
    Ok(browser)
}

fn refresh_outcomes(op: &TestOp) -> Vec<RefreshOutcome> {
    op.record().refresh_grants.iter().map(|grant| grant.outcome).collect()
}

fn cookie(browser: &Browser) -> Result<String, AnyError> {
    Ok(browser.session_cookie().ok_or("the browser holds no session cookie")?)
}

/// Calls a server function as the page's JavaScript does (form-encoded arguments, JSON answer).
async fn server_fn(browser: &Browser, name: &str, fields: &[(&str, &str)]) -> Result<(StatusCode, String), AnyError> {
    let response = browser
        .http()
        .post(browser.url(&format!("/api/fn/{name}")))
        .header(header::ACCEPT, "application/json")
        .form(fields)
        .send()
        .await?;
    Ok((response.status(), response.text().await?))
}

/// `list_sessions` as `browser` sees it: `(sessions, viewer_is_admin)`.
async fn list_sessions(browser: &Browser) -> Result<(Vec<Value>, bool), AnyError> {
    let (status, body) = server_fn(browser, "sessions", &[]).await?;
    assert_eq!(status, StatusCode::OK, "list_sessions answered {status}: {body}");
    let view: Value = serde_json::from_str(&body)?;
    let sessions = view["sessions"]
        .as_array()
        .ok_or_else(|| format!("no sessions in {body}"))?
        .clone();
    Ok((sessions, view["viewer_is_admin"] == true))
}

/// The id of the session `browser` is using, from its own list.
async fn current_session_id(browser: &Browser) -> Result<String, AnyError> {
    let (sessions, _) = list_sessions(browser).await?;
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1, "exactly one session is the current one: {sessions:?}");
    Ok(current[0]["id"].as_str().ok_or("a session without an id")?.to_owned())
}

/// Where a page load presenting only this session cookie is sent (after a restart the browsers'
/// addresses are stale: the server listens on a new port).
async fn page_redirect_with_cookie(app: &TestApp, session_cookie: &str, path: &str) -> Result<String, AnyError> {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .get(app.url(path))
        .header(
            header::COOKIE,
            format!("{}={session_cookie}", pulse_server::SESSION_COOKIE_NAME),
        )
        .send()
        .await?;
    Ok(response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned())
}

/// Asserts that a page load was sent to the login page saying why the session ended.
fn assert_session_ended(landing: &Landing, reason: &str) {
    assert_eq!(landing.path(), "/login", "{}", landing.location);
    assert_eq!(
        landing.param("session_ended").as_deref(),
        Some(reason),
        "{}",
        landing.location
    );
}

/// `POST /api/oidc/backchannel-logout` as the provider sends it (server to server, no cookies).
async fn post_logout_token(app: &TestApp, token: Option<&str>) -> Result<StatusCode, AnyError> {
    let fields: Vec<(&str, &str)> = token.map(|token| ("logout_token", token)).into_iter().collect();
    let response = reqwest::Client::new()
        .post(app.url("/api/oidc/backchannel-logout"))
        .form(&fields)
        .send()
        .await?;
    Ok(response.status())
}

/// Redeems a refresh token at the provider directly, as someone who stole a copy of it would.
async fn redeem_elsewhere(op: &TestOp, refresh_token: &str) -> Result<StatusCode, AnyError> {
    let response = reqwest::Client::new()
        .post(format!("{}/token", op.issuer()))
        .header(header::AUTHORIZATION, basic_auth(CLIENT_ID, CLIENT_SECRET))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)])
        .send()
        .await?;
    Ok(response.status())
}

// ---------------------------------------------------------------------------------------------
// Refresh

#[tokio::test]
async fn refresh_when_due_rotates_the_refresh_token_and_keeps_the_session() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    let scope = op.record().authorize_requests[0]
        .get("scope")
        .cloned()
        .unwrap_or_default();
    assert!(
        scope.split(' ').any(|s| s == "offline_access"),
        "offline access asked for: {scope}"
    );
    let first = op.record().issued[0]
        .refresh_token
        .clone()
        .ok_or("the provider issued a refresh token")?;

    app.clock.advance(seconds(DUE_AFTER - 1));
    assert!(browser.is_signed_in().await?);
    assert!(
        refresh_outcomes(&op).is_empty(),
        "nothing is refreshed before it is due"
    );

    app.clock.advance(seconds(55 - (DUE_AFTER - 1)));
    assert!(browser.is_signed_in().await?, "signed in after the first refresh");
    let record = op.record();
    assert_eq!(
        refresh_outcomes(&op),
        [RefreshOutcome::Issued],
        "exactly one refresh grant"
    );
    assert_eq!(record.refresh_grants[0].presented, first);
    let rotated = record.issued[1]
        .refresh_token
        .clone()
        .ok_or("the refresh grant rotated the token")?;
    assert_ne!(rotated, first);

    // The new token was issued at +55 s for 60 s: due at +103 s. Presenting `first` again would
    // be reuse, which makes the provider revoke everything and so end the session.
    app.clock.advance(seconds(55));
    assert!(browser.is_signed_in().await?, "signed in after the second refresh");
    let record = op.record();
    assert_eq!(refresh_outcomes(&op), [RefreshOutcome::Issued, RefreshOutcome::Issued]);
    assert_eq!(
        record.refresh_grants[1].presented, rotated,
        "the second grant uses the rotated token"
    );

    assert!(browser.is_signed_in().await?);
    assert_eq!(
        op.record().refresh_grants.len(),
        2,
        "no grant while the new token is fresh"
    );
    Ok(())
}

#[tokio::test]
async fn a_provider_that_neither_rotates_nor_reissues_id_tokens_keeps_the_session() -> TestResult {
    let (op, app, browser) = signed_in(&[], |b| {
        b.rotate_refresh_tokens = false;
        b.id_token_on_refresh = false;
    })
    .await?;
    let sign_in = op.record().issued[0].clone();
    app.clock.advance(seconds(55));
    assert!(browser.is_signed_in().await?);
    app.clock.advance(seconds(55));
    let status = browser.status().await?;
    assert_eq!(status["authenticated"], true, "{status}");
    let record = op.record();
    assert_eq!(refresh_outcomes(&op), [RefreshOutcome::Issued, RefreshOutcome::Issued]);
    for grant in &record.refresh_grants {
        assert_eq!(
            Some(&grant.presented),
            sign_in.refresh_token.as_ref(),
            "without rotation the token stays"
        );
    }
    // Without an ID token the claims for the policy come from userinfo, asked with the new token.
    let refreshed = record.issued.last().ok_or("tokens from the refresh")?;
    let bearer = format!("Bearer {}", refreshed.access_token);
    assert!(record
        .userinfo_authorizations
        .iter()
        .any(|sent| sent.as_deref() == Some(bearer.as_str())));
    // The hint at sign-out is the last ID token there is: the sign-in's.
    let redirect = Url::parse(&log_out(&browser).await?)?;
    assert_eq!(query_param(&redirect, "id_token_hint"), Some(sign_in.id_token));
    Ok(())
}

#[tokio::test]
async fn refresh_after_the_provider_rotated_its_signing_key_keeps_the_session() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    assert_eq!(op.record().jwks_fetches, 1);
    op.set(|b| {
        b.published = vec![TestKey::A, TestKey::B];
        b.sign_with = TestKey::B;
    });
    app.clock.advance(seconds(55));
    assert!(
        browser.is_signed_in().await?,
        "an ID token signed with the provider's new key ended the session"
    );
    assert_eq!(refresh_outcomes(&op), [RefreshOutcome::Issued]);
    assert_eq!(
        op.record().jwks_fetches,
        2,
        "the unknown kid made Pulse fetch the keys again"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_at_expiry_share_one_refresh_grant() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    app.clock.advance(seconds(55));

    // The provider holds the first grant while the other requests reach Pulse. Correct: they
    // wait for that grant and adopt its tokens. Broken: they send the same refresh token again
    // (counted on arrival here), which a rotating provider treats as theft.
    op.hold_refreshes();
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (client, url) = (browser.http().clone(), browser.url("/api/security/status"));
        requests.spawn(async move { client.get(url).send().await?.json::<Value>().await });
    }
    tokio::time::timeout(PROMPTLY, op.refresh_arrivals_reach(1))
        .await
        .map_err(|_| "no refresh grant arrived")?;
    // Released at once if all 16 grants arrive; otherwise after a grace long enough for 16
    // local requests to load the session and queue.
    let _ = tokio::time::timeout(Duration::from_millis(500), op.refresh_arrivals_reach(16)).await;
    op.release_refreshes();

    let mut answers = Vec::new();
    while let Some(answer) = requests.join_next().await {
        answers.push(answer??);
    }
    assert_eq!(answers.len(), 16);
    for status in &answers {
        assert_eq!(
            status["authenticated"], true,
            "every concurrent request stays signed in: {status}"
        );
    }
    assert_eq!(
        refresh_outcomes(&op),
        [RefreshOutcome::Issued],
        "exactly one refresh grant for 16 requests"
    );

    let status = browser.status().await?;
    assert_eq!(status["authenticated"], true, "a later request: {status}");
    assert_eq!(
        op.record().refresh_grants.len(),
        1,
        "the later request uses the refreshed tokens"
    );
    Ok(())
}

#[tokio::test]
async fn refused_refresh_ends_the_session_on_the_request_that_triggered_it() -> TestResult {
    let (op, app, api_client) = signed_in(&[], |_| {}).await?;
    let page_client = new_signed_in_browser(&op, &app).await?;
    let (api_cookie, page_cookie) = (cookie(&api_client)?, cookie(&page_client)?);
    app.clock.advance(seconds(55));

    // The provider revoked the grant: an API request goes on, signed out.
    op.set(|b| b.refresh_failure = Some(TokenFailure::invalid_grant()));
    let status = api_client.status().await?;
    assert_eq!(
        status["authenticated"], false,
        "the request that met the refusal: {status}"
    );
    assert_eq!(refresh_outcomes(&op), [RefreshOutcome::Failed]);

    // Someone else redeemed the page client's refresh token first (a stolen copy): Pulse's own
    // use is reuse, refused. A page load is sent to the login page with the reason.
    op.set(|b| b.refresh_failure = None);
    let stolen = op.record().issued[1].refresh_token.clone().ok_or("a refresh token")?;
    assert_eq!(redeem_elsewhere(&op, &stolen).await?, StatusCode::OK);
    let landing = page_client.follow("/").await?;
    assert_session_ended(&landing, "idp_refused");
    assert_eq!(landing.param("returnTo").as_deref(), Some("/"));
    assert_eq!(refresh_outcomes(&op).last(), Some(&RefreshOutcome::ReuseDetected));
    assert!(!page_client.is_signed_in().await?);

    for old in [api_cookie, page_cookie] {
        assert_eq!(
            app.status_with_cookie(&old).await?["authenticated"],
            false,
            "an old cookie replayed"
        );
    }
    Ok(())
}

#[tokio::test]
async fn refreshed_id_token_issued_to_another_party_ends_the_session() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    op.set(|b| b.claim("azp", json!("another-client")));
    app.clock.advance(seconds(55));
    assert!(
        !browser.is_signed_in().await?,
        "a refreshed ID token whose azp is another client must end the session"
    );
    assert_eq!(refresh_outcomes(&op), [RefreshOutcome::Issued]);
    Ok(())
}

#[tokio::test]
async fn refreshed_id_token_naming_this_client_as_azp_keeps_the_session() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    op.set(|b| b.claim("azp", json!(CLIENT_ID)));
    app.clock.advance(seconds(55));
    assert!(browser.is_signed_in().await?);
    assert_eq!(refresh_outcomes(&op), [RefreshOutcome::Issued]);
    Ok(())
}

#[tokio::test]
async fn refreshed_id_token_naming_another_subject_ends_the_session() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    op.set(|b| b.claim("sub", json!("someone-else")));
    app.clock.advance(seconds(55));
    assert!(
        !browser.is_signed_in().await?,
        "a refreshed ID token for another subject must end the session"
    );
    assert_eq!(
        refresh_outcomes(&op),
        [RefreshOutcome::Issued],
        "the provider answered; Pulse refused"
    );
    let users = sso_users(&app).await?;
    assert_eq!(users.len(), 1, "no account for the other subject: {users:?}");
    assert_eq!(users[0].3, DEFAULT_SUB);
    Ok(())
}

#[tokio::test]
async fn provider_errors_keep_the_session_until_the_access_token_expires() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    op.set(|b| b.refresh_failure = Some(TokenFailure::server_error()));

    app.clock.advance(seconds(50)); // due, not yet expired
    assert!(
        browser.is_signed_in().await?,
        "a 500 while the access token is still valid is not a verdict"
    );
    assert_eq!(refresh_outcomes(&op), [RefreshOutcome::Failed], "the refresh was tried");

    app.clock.advance(seconds(11)); // expired, and the provider still failing
    assert!(
        !browser.is_signed_in().await?,
        "signed in on an expired token the provider would not renew"
    );
    assert_eq!(refresh_outcomes(&op), [RefreshOutcome::Failed, RefreshOutcome::Failed]);
    Ok(())
}

#[tokio::test]
async fn unreachable_provider_keeps_the_session_until_the_access_token_expires() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    op.stop().await;

    app.clock.advance(seconds(50));
    assert!(
        browser.is_signed_in().await?,
        "an unreachable provider while the access token is valid"
    );

    app.clock.advance(seconds(11));
    assert_session_ended(&browser.follow("/").await?, "idp_unreachable");
    assert!(!browser.is_signed_in().await?);
    Ok(())
}

#[tokio::test]
async fn leaving_the_allowed_groups_ends_the_session_at_refresh() -> TestResult {
    let (op, app, browser) = signed_in(&[("OIDC_ALLOWED_GROUPS", "pulse-users")], |_| {}).await?;
    op.set(|b| b.claim("groups", json!(["another-team"])));
    app.clock.advance(seconds(55));
    assert!(
        !browser.is_signed_in().await?,
        "the policy is evaluated again on the refreshed claims"
    );
    assert_eq!(refresh_outcomes(&op), [RefreshOutcome::Issued]);
    Ok(())
}

#[tokio::test]
async fn losing_the_admin_group_makes_the_user_a_viewer_at_refresh() -> TestResult {
    let (op, app, browser) = signed_in(&[("OIDC_ADMIN_GROUPS", "pulse-admins")], |b| {
        b.claim("groups", json!(["pulse-users", "pulse-admins"]))
    })
    .await?;
    assert_eq!(browser.status().await?["user"]["role"], "admin");
    assert!(list_sessions(&browser).await?.1, "server functions see an admin");

    op.set(|b| b.claim("groups", json!(["pulse-users"])));
    app.clock.advance(seconds(55));
    let status = browser.status().await?;
    assert_eq!(status["authenticated"], true, "{status}");
    assert_eq!(status["user"]["role"], "viewer", "{status}");
    assert_eq!(status["user"]["groups"], json!(["pulse-users"]), "{status}");
    assert!(!list_sessions(&browser).await?.1, "server functions see the viewer too");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Signing out

/// `POST /api/logout` from `browser`: the `redirectUrl` it answers.
async fn log_out(browser: &Browser) -> Result<String, AnyError> {
    let response = browser.http().post(browser.url("/api/logout")).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    Ok(body["redirectUrl"]
        .as_str()
        .ok_or_else(|| format!("no redirectUrl in {body}"))?
        .to_owned())
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

#[tokio::test]
async fn sso_logout_ends_the_local_session_and_sends_the_browser_to_the_provider() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    let id_token = op.record().issued[0].id_token.clone();
    let old_cookie = cookie(&browser)?;

    let redirect = Url::parse(&log_out(&browser).await?)?;
    assert_eq!(
        redirect.as_str().split('?').next(),
        Some(format!("{}/end-session", op.issuer()).as_str())
    );
    assert_eq!(query_param(&redirect, "id_token_hint"), Some(id_token));
    assert_eq!(
        query_param(&redirect, "post_logout_redirect_uri"),
        Some(app.url("/login?logged_out=1"))
    );
    assert_eq!(query_param(&redirect, "client_id").as_deref(), Some(CLIENT_ID));
    assert!(
        query_param(&redirect, "state").is_some_and(|state| state.len() >= 16),
        "{redirect}"
    );

    // Gone before the browser even reaches the provider.
    assert!(!browser.is_signed_in().await?);
    assert_eq!(app.status_with_cookie(&old_cookie).await?["authenticated"], false);
    Ok(())
}

#[tokio::test]
async fn configured_logout_url_replaces_the_end_session_endpoint() -> TestResult {
    let custom = "https://sso.example.com/logout?tenant=acme";
    let (op, app, browser) = signed_in(&[("OIDC_LOGOUT_URL", custom)], |_| {}).await?;
    let id_token = op.record().issued[0].id_token.clone();

    let redirect = Url::parse(&log_out(&browser).await?)?;
    assert_eq!(
        (redirect.host_str(), redirect.path()),
        (Some("sso.example.com"), "/logout"),
        "{redirect}"
    );
    assert_eq!(
        query_param(&redirect, "tenant").as_deref(),
        Some("acme"),
        "its own parameters are kept"
    );
    assert_eq!(query_param(&redirect, "id_token_hint"), Some(id_token));
    assert_eq!(
        query_param(&redirect, "post_logout_redirect_uri"),
        Some(app.url("/login?logged_out=1"))
    );
    assert_eq!(query_param(&redirect, "client_id").as_deref(), Some(CLIENT_ID));
    assert!(!browser.is_signed_in().await?);
    Ok(())
}

#[tokio::test]
async fn sso_logout_stays_local_when_the_provider_offers_no_end_session_endpoint() -> TestResult {
    let (_op, _app, browser) = signed_in(&[], |b| b.publish_end_session = false).await?;
    assert_eq!(log_out(&browser).await?, "/login?logged_out=1");
    assert!(!browser.is_signed_in().await?);
    Ok(())
}

#[tokio::test]
async fn password_session_logout_goes_to_the_login_page() -> TestResult {
    let op = TestOp::start().await?;
    let app = spawn_pulse_with(&op, &[], |raw| with_env_admin(raw, ADMIN_USER, ADMIN_PASS)).await;
    let session = app.login_as_admin().await?;
    let response = app.client.post(app.url("/api/logout")).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await?;
    assert_eq!(
        body["redirectUrl"], "/login?logged_out=1",
        "not to the provider, although it offers logout"
    );
    assert_eq!(app.status_with_cookie(&session).await?["authenticated"], false);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Back-channel logout

/// A Pulse whose clock the provider follows, and nobody signed in yet.
async fn backchannel_setup() -> Result<(TestOp, TestApp), AnyError> {
    let op = TestOp::start().await?;
    let app = spawn_pulse(&op, &[]).await;
    op.follow_clock(&app.clock);
    Ok((op, app))
}

/// Signs a new browser in as `sub` with the provider's session `sid`.
async fn sign_in_as(op: &TestOp, app: &TestApp, sub: &str, sid: &str) -> Result<Browser, AnyError> {
    op.set(|b| b.claims([("sub", json!(sub)), ("sid", json!(sid))]));
    new_signed_in_browser(op, app).await
}

#[tokio::test]
async fn backchannel_logout_by_sid_ends_that_session_only() -> TestResult {
    let (op, app) = backchannel_setup().await?;
    let laptop = sign_in_as(&op, &app, DEFAULT_SUB, "sid-laptop").await?;
    let phone = sign_in_as(&op, &app, DEFAULT_SUB, "sid-phone").await?;

    let token = op.logout_token(Signature::Rs256, &[("sid", json!("sid-laptop"))])?;
    assert_eq!(post_logout_token(&app, Some(&token)).await?, StatusCode::OK);
    assert_session_ended(&laptop.follow("/").await?, "idp_logout");
    assert!(
        !laptop.is_signed_in().await?,
        "the session with that sid ends on its next request"
    );
    assert!(phone.is_signed_in().await?, "the provider session of another sid stays");
    Ok(())
}

#[tokio::test]
async fn backchannel_logout_by_sub_ends_every_session_of_the_subject_even_after_a_restart() -> TestResult {
    let (op, mut app) = backchannel_setup().await?;
    let first = sign_in_as(&op, &app, DEFAULT_SUB, "sid-1").await?;
    let second = sign_in_as(&op, &app, DEFAULT_SUB, "sid-2").await?;
    let other_user = sign_in_as(&op, &app, "user-2", "sid-3").await?;
    let cookies = [cookie(&first)?, cookie(&second)?, cookie(&other_user)?];

    let token = op.logout_token(Signature::Rs256, &[("sub", json!(DEFAULT_SUB))])?;
    assert_eq!(post_logout_token(&app, Some(&token)).await?, StatusCode::OK);
    assert!(!first.is_signed_in().await?);

    // `second` has not come back since: its stored session still exists, and only the
    // persisted revocation can refuse it after the restart.
    app.restart().await;
    let landing = Landing {
        location: page_redirect_with_cookie(&app, &cookies[1], "/").await?,
    };
    assert_session_ended(&landing, "idp_logout");
    assert_eq!(
        app.status_with_cookie(&cookies[1]).await?["authenticated"],
        false,
        "revoked before the restart"
    );
    assert_eq!(app.status_with_cookie(&cookies[0]).await?["authenticated"], false);
    assert_eq!(
        app.status_with_cookie(&cookies[2]).await?["authenticated"],
        true,
        "another subject stays"
    );
    Ok(())
}

#[tokio::test]
async fn invalid_logout_tokens_are_refused_with_400_and_end_nothing() -> TestResult {
    let (op, app) = backchannel_setup().await?;
    let browser = sign_in_as(&op, &app, DEFAULT_SUB, "sid-1").await?;
    // Each would end `browser`'s session but for its one defect.
    let for_the_session = |signature: Signature, defect: &[(&str, Value)]| {
        let mut claims = vec![("sid", json!("sid-1"))];
        claims.extend_from_slice(defect);
        op.logout_token(signature, &claims).map(Some)
    };
    let rs256 = Signature::Rs256;
    let (now, an_hour) = (app.clock.now().unix_timestamp(), 3600);
    let invalid: Vec<(&str, Option<String>)> = vec![
        ("alg none", for_the_session(Signature::Unsigned, &[])?),
        (
            "HS256 keyed with the client secret",
            for_the_session(Signature::Hs256WithClientSecret, &[])?,
        ),
        ("a tampered signature", for_the_session(Signature::Rs256Tampered, &[])?),
        ("no events claim", for_the_session(rs256, &[("events", Value::Null)])?),
        (
            "another event",
            for_the_session(rs256, &[("events", json!({ "urn:other": {} }))])?,
        ),
        ("a nonce", for_the_session(rs256, &[("nonce", json!("n-1"))])?),
        (
            "another audience",
            for_the_session(rs256, &[("aud", json!("another-client"))])?,
        ),
        (
            "another issuer",
            for_the_session(rs256, &[("iss", json!("https://evil.example"))])?,
        ),
        ("neither sub nor sid", for_the_session(rs256, &[("sid", Value::Null)])?),
        ("no jti", for_the_session(rs256, &[("jti", Value::Null)])?),
        (
            "iat an hour ago",
            for_the_session(rs256, &[("iat", json!(now - an_hour))])?,
        ),
        (
            "iat an hour ahead",
            for_the_session(rs256, &[("iat", json!(now + an_hour))])?,
        ),
        ("exp passed", for_the_session(rs256, &[("exp", json!(now - 60))])?),
        ("garbage", Some("not.a-jwt".to_owned())),
        ("empty", Some(String::new())),
        ("missing logout_token", None),
    ];
    for (defect, token) in &invalid {
        let status = post_logout_token(&app, token.as_deref()).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "a logout token with {defect}");
        assert!(
            browser.is_signed_in().await?,
            "a logout token with {defect} ended the session"
        );
    }

    // The same token twice: the first ends the session, the replay must not end a new one.
    let token = for_the_session(rs256, &[])?.ok_or("a token")?;
    assert_eq!(post_logout_token(&app, Some(&token)).await?, StatusCode::OK);
    assert!(!browser.is_signed_in().await?, "the valid token ends the session");
    let again = sign_in_as(&op, &app, DEFAULT_SUB, "sid-1").await?;
    assert_eq!(
        post_logout_token(&app, Some(&token)).await?,
        StatusCode::BAD_REQUEST,
        "a replayed jti"
    );
    assert!(again.is_signed_in().await?, "a replayed logout token ended a session");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The session registry, through the server functions the sessions screen calls

#[tokio::test]
async fn a_user_lists_their_sessions_and_revokes_another_device() -> TestResult {
    let (op, app, laptop) = signed_in(&[], |_| {}).await?;
    let phone = new_signed_in_browser(&op, &app).await?;

    let (sessions, _) = list_sessions(&laptop).await?;
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let laptop_id = current_session_id(&laptop).await?;
    let phone_id = current_session_id(&phone).await?;
    assert_ne!(laptop_id, phone_id);
    assert!(
        sessions
            .iter()
            .all(|s| s["username"] == "alice" && s["method"] == "oidc"),
        "{sessions:?}"
    );

    // Another site cannot make the laptop's browser revoke anything: not by a cross-site POST,
    // and not by a link (a top-level GET carries the Lax session cookie).
    let cross_site = laptop
        .http()
        .post(laptop.url("/api/fn/revoke_session"))
        .header(header::ORIGIN, "https://evil.example")
        .header(header::ACCEPT, "application/json")
        .form(&[("id", phone_id.as_str())])
        .send()
        .await?;
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let by_link = laptop
        .http()
        .get(laptop.url(&format!("/api/fn/revoke_session?id={phone_id}")))
        .send()
        .await?;
    assert!(
        !by_link.status().is_success(),
        "GET revoked a session: {}",
        by_link.status()
    );
    assert!(phone.is_signed_in().await?, "the phone survives both attempts");

    let (status, body) = server_fn(&laptop, "revoke_session", &[("id", &phone_id)]).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_session_ended(&phone.follow("/").await?, "revoked");
    assert!(
        !phone.is_signed_in().await?,
        "the revoked device is signed out on its next request"
    );
    assert!(laptop.is_signed_in().await?);
    let (sessions, _) = list_sessions(&laptop).await?;
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["id"], laptop_id.as_str());
    Ok(())
}

#[tokio::test]
async fn a_viewer_cannot_revoke_someone_elses_session_but_an_admin_can() -> TestResult {
    let (op, app, viewer) = signed_in(&[("OIDC_ADMIN_GROUPS", "pulse-admins")], |b| {
        b.claims([("sub", json!("viewer-1")), ("preferred_username", json!("victor"))])
    })
    .await?;
    op.set(|b| {
        b.claims([
            ("sub", json!("admin-1")),
            ("preferred_username", json!("ada")),
            ("groups", json!(["pulse-users", "pulse-admins"])),
        ])
    });
    let admin = new_signed_in_browser(&op, &app).await?;
    let admin_id = current_session_id(&admin).await?;
    let viewer_id = current_session_id(&viewer).await?;

    let (sessions, viewer_is_admin) = list_sessions(&viewer).await?;
    assert!(!viewer_is_admin);
    assert_eq!(sessions.len(), 1, "a viewer sees only their own sessions: {sessions:?}");
    let (status, body) = server_fn(&viewer, "revoke_session", &[("id", &admin_id)]).await?;
    assert!(
        !status.is_success(),
        "a viewer revoked an admin's session: {status} {body}"
    );
    assert!(admin.is_signed_in().await?, "the admin's session survives the attempt");

    let (sessions, viewer_is_admin) = list_sessions(&admin).await?;
    assert!(viewer_is_admin);
    assert_eq!(sessions.len(), 2, "an admin sees everyone's sessions: {sessions:?}");
    let (status, body) = server_fn(&admin, "revoke_session", &[("id", &viewer_id)]).await?;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!viewer.is_signed_in().await?);
    Ok(())
}

#[tokio::test]
async fn last_seen_is_recorded_at_most_once_a_minute() -> TestResult {
    let (op, app) = backchannel_setup().await?;
    let browser = sign_in_as(&op, &app, DEFAULT_SUB, "sid-1").await?;
    let last_seen = || async {
        let (sessions, _) = list_sessions(&browser).await?;
        Ok::<_, AnyError>((sessions[0]["created_at"].as_i64(), sessions[0]["last_seen_at"].as_i64()))
    };
    let (created, seen) = last_seen().await?;
    assert_eq!(seen, created);

    app.clock.advance(seconds(30));
    assert_eq!(last_seen().await?.1, created, "not written again within a minute");
    app.clock.advance(seconds(31));
    let expected = created.map(|at| at + 61);
    assert_eq!(last_seen().await?.1, expected, "written again once a minute has passed");
    Ok(())
}

#[tokio::test]
async fn signing_in_again_in_the_same_browser_leaves_no_ghost_session() -> TestResult {
    let (op, _app, browser) = signed_in(&[], |_| {}).await?;
    let landing = browser.sign_in(&op, "/wanted").await?;
    browser.assert_signed_in(&landing, "/wanted").await?;
    let (sessions, _) = list_sessions(&browser).await?;
    assert_eq!(sessions.len(), 1, "one browser, one session: {sessions:?}");
    assert_eq!(sessions[0]["current"], true);
    Ok(())
}

#[tokio::test]
async fn session_functions_refuse_the_signed_out() -> TestResult {
    let (_op, app, browser) = signed_in(&[], |_| {}).await?;
    let id = current_session_id(&browser).await?;
    let stranger = Browser::new(&app)?;
    let (status, _) = server_fn(&stranger, "sessions", &[]).await?;
    assert!(!status.is_success(), "listing sessions signed out answered {status}");
    let (status, _) = server_fn(&stranger, "revoke_session", &[("id", &id)]).await?;
    assert!(!status.is_success(), "revoking signed out answered {status}");
    assert!(browser.is_signed_in().await?);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// At rest

#[tokio::test]
async fn no_token_or_secret_reaches_the_disk_in_plain_text_even_after_a_refresh() -> TestResult {
    let (op, app, browser) = signed_in(&[], |_| {}).await?;
    app.clock.advance(seconds(55));
    assert!(browser.is_signed_in().await?);
    let record = op.record();
    assert_eq!(
        refresh_outcomes(&op),
        [RefreshOutcome::Issued],
        "the scan covers a refreshed session"
    );

    let mut secrets: Vec<(String, String)> = vec![("client secret".into(), CLIENT_SECRET.into())];
    for (index, issued) in record.issued.iter().enumerate() {
        let which = if index == 0 { "sign-in" } else { "refresh" };
        let signature = issued.id_token.rsplit('.').next().unwrap_or_default().to_owned();
        secrets.push((format!("{which} access token"), issued.access_token.clone()));
        secrets.push((format!("{which} ID token"), issued.id_token.clone()));
        secrets.push((format!("{which} ID token signature"), signature));
        if let Some(refresh_token) = &issued.refresh_token {
            secrets.push((format!("{which} refresh token"), refresh_token.clone()));
        }
    }
    assert_eq!(
        secrets.len(),
        9,
        "both refresh tokens, access tokens and ID tokens are looked for"
    );

    let files = all_file_bytes(app.data_dir())?;
    let names: Vec<String> = files
        .iter()
        .filter_map(|(path, _)| path.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    assert!(names.iter().any(|name| name == "pulse.db"), "scanned {names:?}");
    let everything: Vec<u8> = files.iter().flat_map(|(_, bytes)| bytes.iter().copied()).collect();
    assert!(
        contains(&everything, b"alice"),
        "the scan sees what Pulse stores; scanned {names:?}"
    );
    for (name, secret) in &secrets {
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
