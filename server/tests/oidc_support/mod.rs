//! A test OpenID provider that each test can misconfigure at will, and a browser that walks Pulse's
//! authorization-code flow against it by hand (cookie jar kept, redirects not followed).
//!
//! The provider runs in the test process on 127.0.0.1:0. It signs ID tokens with the test-only RSA
//! keys in `tests/fixtures/op-key-{a,b,c}.pem` (made once with
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`; generating keys at test time
//! in a debug build is slow). They protect nothing.
// Every test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::{SystemTime, UNIX_EPOCH},
};

use axum::{
    extract::{Form, Query, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use base64::{
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
    Engine,
};
use pulse_server::SESSION_COOKIE_NAME;
use rand::{distributions::Alphanumeric, Rng};
use reqwest::{
    cookie::{CookieStore, Jar},
    redirect, Client, Url,
};
use ring::{
    hmac,
    rand::SystemRandom,
    signature::{RsaKeyPair, RSA_PKCS1_SHA256},
};
use serde_json::{json, Map, Value};

use crate::common::{TestApp, TestResult};

type AnyError = Box<dyn std::error::Error>;

pub const CLIENT_ID: &str = "pulse-test-client";
pub const CLIENT_SECRET: &str = "test-client-secret-0123456789";
/// The subject the provider asserts unless a test overrides `sub`.
pub const DEFAULT_SUB: &str = "user-1";

// ---------------------------------------------------------------------------------------------
// The provider's behaviour, set by each test

/// One of the three fixture keys; the JWKS names each by its `kid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestKey {
    A,
    B,
    C,
}

impl TestKey {
    pub fn kid(self) -> &'static str {
        match self {
            TestKey::A => "key-a",
            TestKey::B => "key-b",
            TestKey::C => "key-c",
        }
    }

    fn pem(self) -> &'static str {
        match self {
            TestKey::A => include_str!("../fixtures/op-key-a.pem"),
            TestKey::B => include_str!("../fixtures/op-key-b.pem"),
            TestKey::C => include_str!("../fixtures/op-key-c.pem"),
        }
    }
}

/// How the ID token is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// RS256 with `OpBehaviour::sign_with`.
    Rs256,
    /// RS256, then one byte of the signature flipped.
    Rs256Tampered,
    /// `alg: none` and an empty signature.
    Unsigned,
    /// HS256 keyed with the client secret (the classic algorithm-confusion attack).
    Hs256WithClientSecret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtHash {
    Absent,
    Correct,
    Wrong,
}

/// What the token endpoint answers instead of tokens.
#[derive(Debug, Clone)]
pub struct TokenFailure {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct OpBehaviour {
    /// `issuer` in the discovery document; `None` means the provider's own base URL.
    pub discovery_issuer: Option<String>,
    /// `token_endpoint` in the discovery document; `None` means the provider's own.
    pub token_endpoint: Option<String>,
    pub token_failure: Option<TokenFailure>,
    /// ID token claims set over the defaults; `Value::Null` removes a claim.
    pub claims: Map<String, Value>,
    pub signature: Signature,
    pub sign_with: TestKey,
    pub kid_in_header: bool,
    /// The keys the JWKS publishes, each with its `kid`.
    pub published: Vec<TestKey>,
    pub at_hash: AtHash,
    pub issue_refresh_token: bool,
    /// Userinfo claims set over `{"sub": <the ID token's sub>}`; `Value::Null` removes one.
    pub userinfo: Map<String, Value>,
    /// Adds RFC 9207's `iss` to the redirect back.
    pub authorize_iss: Option<String>,
    /// Refuses the sign-in: `(error, error_description)` instead of a code.
    pub authorize_error: Option<(String, String)>,
}

impl Default for OpBehaviour {
    fn default() -> Self {
        OpBehaviour {
            discovery_issuer: None,
            token_endpoint: None,
            token_failure: None,
            claims: Map::new(),
            signature: Signature::Rs256,
            sign_with: TestKey::A,
            kid_in_header: true,
            published: vec![TestKey::A],
            at_hash: AtHash::Absent,
            issue_refresh_token: true,
            userinfo: Map::new(),
            authorize_iss: None,
            authorize_error: None,
        }
    }
}

impl OpBehaviour {
    /// Sets (or with `Value::Null` removes) an ID token claim.
    pub fn claim(&mut self, name: &str, value: Value) {
        self.claims.insert(name.to_owned(), value);
    }

    pub fn claims<const N: usize>(&mut self, claims: [(&str, Value); N]) {
        for (name, value) in claims {
            self.claim(name, value);
        }
    }

    pub fn userinfo_claim(&mut self, name: &str, value: Value) {
        self.userinfo.insert(name.to_owned(), value);
    }
}

// ---------------------------------------------------------------------------------------------
// What the provider saw, for assertions

#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub authorization: Option<String>,
    pub form: HashMap<String, String>,
}

/// The tokens one successful token request handed out.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: String,
}

#[derive(Debug, Clone, Default)]
pub struct OpRecord {
    pub authorize_requests: Vec<HashMap<String, String>>,
    pub token_requests: Vec<TokenRequest>,
    pub userinfo_authorizations: Vec<Option<String>>,
    pub discovery_fetches: usize,
    pub jwks_fetches: usize,
    pub issued: Vec<Issued>,
}

/// What the authorization endpoint remembers for a code.
#[derive(Debug, Clone)]
struct Grant {
    nonce: Option<String>,
    code_challenge: String,
    redirect_uri: String,
}

struct SigningKey {
    pair: RsaKeyPair,
    jwk: Value,
}

struct OpState {
    base: String,
    behaviour: Mutex<OpBehaviour>,
    record: Mutex<OpRecord>,
    grants: Mutex<HashMap<String, Grant>>,
    keys: Vec<SigningKey>,
}

/// Locks a mutex; a test that panicked while holding it must not hide the next failure.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub struct TestOp {
    state: Arc<OpState>,
}

impl TestOp {
    pub async fn start() -> Result<TestOp, AnyError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let mut keys = Vec::new();
        for key in [TestKey::A, TestKey::B, TestKey::C] {
            keys.push(load_key(key)?);
        }
        let state = Arc::new(OpState {
            base,
            behaviour: Mutex::new(OpBehaviour::default()),
            record: Mutex::new(OpRecord::default()),
            grants: Mutex::new(HashMap::new()),
            keys,
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(state.clone());
        // Ends with the test's runtime.
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(TestOp { state })
    }

    /// The provider's base URL, which is also its issuer.
    pub fn issuer(&self) -> String {
        self.state.base.clone()
    }

    /// Changes how the provider behaves from the next request on.
    pub fn set(&self, change: impl FnOnce(&mut OpBehaviour)) {
        change(&mut lock(&self.state.behaviour));
    }

    pub fn record(&self) -> OpRecord {
        lock(&self.state.record).clone()
    }
}

fn load_key(key: TestKey) -> Result<SigningKey, AnyError> {
    let body: String = key.pem().lines().filter(|line| !line.starts_with("-----")).collect();
    let der = STANDARD.decode(body)?;
    let pair = RsaKeyPair::from_pkcs8(&der).map_err(|err| format!("fixture key {key:?}: {err}"))?;
    let (n, e) = rsa_public_numbers(pair.public().as_ref()).ok_or("fixture key: unexpected public key DER")?;
    let jwk = json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": key.kid(),
        "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
    });
    Ok(SigningKey { pair, jwk })
}

/// Reads `SEQUENCE { n INTEGER, e INTEGER }` (RFC 8017's RSAPublicKey), as ring serializes it.
fn rsa_public_numbers(der: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&found, rest) = input.split_first()?;
        if found != tag {
            return None;
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            let (bytes, after) = (rest.get(..count)?, rest.get(count..)?);
            rest = after;
            bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
        };
        Some((rest.get(..len)?, rest.get(len..)?))
    }
    let strip = |bytes: &[u8]| bytes.iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
    let (sequence, _) = element(der, 0x30)?;
    let (n, rest) = element(sequence, 0x02)?;
    let (e, _) = element(rest, 0x02)?;
    Some((strip(n), strip(e)))
}

fn random_token(prefix: &str) -> String {
    let tail: String = rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
    format!("{prefix}{tail}")
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// `Basic base64(id:secret)`, as RFC 6749 §2.3.1 wants (both are URL-safe here, so no escaping).
pub fn basic_auth(client_id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
}

/// `at_hash`: the left half of SHA-256 over the access token, base64url.
pub fn at_hash(access_token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn apply_overrides(target: &mut Map<String, Value>, overrides: &Map<String, Value>) {
    for (name, value) in overrides {
        if value.is_null() {
            target.remove(name);
        } else {
            target.insert(name.clone(), value.clone());
        }
    }
}

impl OpState {
    fn effective_sub(behaviour: &OpBehaviour) -> String {
        behaviour.claims.get("sub").and_then(Value::as_str).unwrap_or(DEFAULT_SUB).to_owned()
    }

    fn key(&self, key: TestKey) -> &SigningKey {
        // Loaded in declaration order, so the discriminant is the index.
        &self.keys[key as usize]
    }

    fn mint_id_token(&self, behaviour: &OpBehaviour, grant: &Grant, access_token: &str) -> Result<String, String> {
        let now = unix_now();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.base));
        claims.insert("sub".into(), json!(DEFAULT_SUB));
        claims.insert("aud".into(), json!(CLIENT_ID));
        claims.insert("exp".into(), json!(now + 300));
        claims.insert("iat".into(), json!(now));
        if let Some(nonce) = &grant.nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        claims.insert("preferred_username".into(), json!("alice"));
        claims.insert("email".into(), json!("alice@example.com"));
        claims.insert("groups".into(), json!(["pulse-users"]));
        match behaviour.at_hash {
            AtHash::Absent => {}
            AtHash::Correct => {
                claims.insert("at_hash".into(), json!(at_hash(access_token)));
            }
            AtHash::Wrong => {
                claims.insert("at_hash".into(), json!(at_hash("not the access token")));
            }
        }
        apply_overrides(&mut claims, &behaviour.claims);
        let payload = b64_json(&Value::Object(claims));

        let mut jose = json!({ "typ": "JWT" });
        if behaviour.kid_in_header {
            jose["kid"] = json!(behaviour.sign_with.kid());
        }
        match behaviour.signature {
            Signature::Rs256 | Signature::Rs256Tampered => {
                jose["alg"] = json!("RS256");
                let input = format!("{}.{payload}", b64_json(&jose));
                let pair = &self.key(behaviour.sign_with).pair;
                let mut signature = vec![0u8; pair.public().modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut signature)
                    .map_err(|_| "RSA signing failed".to_owned())?;
                if behaviour.signature == Signature::Rs256Tampered {
                    if let Some(last) = signature.last_mut() {
                        *last ^= 0x01;
                    }
                }
                Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
            }
            Signature::Unsigned => {
                jose["alg"] = json!("none");
                Ok(format!("{}.{payload}.", b64_json(&jose)))
            }
            Signature::Hs256WithClientSecret => {
                jose["alg"] = json!("HS256");
                let input = format!("{}.{payload}", b64_json(&jose));
                let key = hmac::Key::new(hmac::HMAC_SHA256, CLIENT_SECRET.as_bytes());
                let tag = hmac::sign(&key, input.as_bytes());
                Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref())))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The provider's endpoints

async fn discovery(State(op): State<Arc<OpState>>) -> Response {
    lock(&op.record).discovery_fetches += 1;
    let behaviour = lock(&op.behaviour).clone();
    let base = &op.base;
    json_response(
        StatusCode::OK,
        json!({
            "issuer": behaviour.discovery_issuer.clone().unwrap_or_else(|| base.clone()),
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": behaviour.token_endpoint.clone().unwrap_or_else(|| format!("{base}/token")),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
        }),
    )
}

async fn jwks(State(op): State<Arc<OpState>>) -> Response {
    lock(&op.record).jwks_fetches += 1;
    let published = lock(&op.behaviour).published.clone();
    let keys: Vec<Value> = published.iter().map(|key| op.key(*key).jwk.clone()).collect();
    json_response(StatusCode::OK, json!({ "keys": keys }))
}

/// No login page: answers at once with a redirect to the client, as a signed-in user's IdP does.
async fn authorize(State(op): State<Arc<OpState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    lock(&op.record).authorize_requests.push(query.clone());
    let behaviour = lock(&op.behaviour).clone();
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    let bad_request =
        |why: &str| (StatusCode::BAD_REQUEST, format!("test OP refuses the request: {why}")).into_response();
    if param("response_type") != "code" {
        return bad_request("response_type must be code");
    }
    if param("client_id") != CLIENT_ID {
        return bad_request("unknown client_id");
    }
    if param("code_challenge_method") != "S256" || param("code_challenge").is_empty() {
        return bad_request("PKCE S256 is required");
    }
    let Ok(mut back) = Url::parse(&param("redirect_uri")) else {
        return bad_request("redirect_uri is not a URL");
    };
    {
        let mut pairs = back.query_pairs_mut();
        if let Some((error, description)) = &behaviour.authorize_error {
            pairs.append_pair("error", error).append_pair("error_description", description);
        } else {
            let code = random_token("code-");
            lock(&op.grants).insert(
                code.clone(),
                Grant {
                    nonce: query.get("nonce").cloned(),
                    code_challenge: param("code_challenge"),
                    redirect_uri: param("redirect_uri"),
                },
            );
            pairs.append_pair("code", &code);
        }
        if let Some(state) = query.get("state") {
            pairs.append_pair("state", state);
        }
        if let Some(iss) = &behaviour.authorize_iss {
            pairs.append_pair("iss", iss);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn token(
    State(op): State<Arc<OpState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    lock(&op.record).token_requests.push(TokenRequest { authorization: authorization.clone(), form: form.clone() });
    let behaviour = lock(&op.behaviour).clone();
    if let Some(failure) = &behaviour.token_failure {
        let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, [(header::CONTENT_TYPE, failure.content_type)], failure.body.clone()).into_response();
    }
    let refuse = |status: StatusCode, error: &str, why: &str| {
        json_response(status, json!({ "error": error, "error_description": format!("test OP: {why}") }))
    };
    if authorization != Some(basic_auth(CLIENT_ID, CLIENT_SECRET)) {
        return refuse(StatusCode::UNAUTHORIZED, "invalid_client", "client_secret_basic expected");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return refuse(StatusCode::BAD_REQUEST, "unsupported_grant_type", "authorization_code expected");
    }
    // Codes are single use.
    let Some(grant) = form.get("code").and_then(|code| lock(&op.grants).remove(code)) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code");
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri differs from the authorization request");
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()));
    if verifier.is_empty() || challenge != grant.code_challenge {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verifier does not match the challenge");
    }
    let access_token = random_token("at-");
    let refresh_token = behaviour.issue_refresh_token.then(|| random_token("rt-"));
    let id_token = match op.mint_id_token(&behaviour, &grant, &access_token) {
        Ok(token) => token,
        Err(why) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &why),
    };
    lock(&op.record).issued.push(Issued {
        access_token: access_token.clone(),
        refresh_token: refresh_token.clone(),
        id_token: id_token.clone(),
    });
    let mut body = json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token,
    });
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    json_response(StatusCode::OK, body)
}

async fn userinfo(State(op): State<Arc<OpState>>, headers: HeaderMap) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    lock(&op.record).userinfo_authorizations.push(authorization.clone());
    let known = {
        let record = lock(&op.record);
        record.issued.iter().any(|issued| authorization.as_deref() == Some(&format!("Bearer {}", issued.access_token)))
    };
    if !known {
        return json_response(StatusCode::UNAUTHORIZED, json!({ "error": "invalid_token" }));
    }
    let behaviour = lock(&op.behaviour).clone();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(OpState::effective_sub(&behaviour)));
    apply_overrides(&mut claims, &behaviour.userinfo);
    json_response(StatusCode::OK, Value::Object(claims))
}

// ---------------------------------------------------------------------------------------------
// Pulse, and a browser that signs in to it

/// Starts Pulse with SSO enabled against `op` through OIDC_* variables, plus `extra` ones.
pub async fn spawn_pulse(op: &TestOp, extra: &[(&str, &str)]) -> TestApp {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("OIDC_ENABLED".to_owned(), "true".to_owned()),
        ("OIDC_ISSUER_URL".to_owned(), op.issuer()),
        ("OIDC_CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
        ("OIDC_CLIENT_SECRET".to_owned(), CLIENT_SECRET.to_owned()),
    ]);
    for (name, value) in extra {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    crate::common::spawn_app_with(move |raw| {
        raw.oidc_env = pulse_core::oidc::settings::OidcEnv::from_lookup(|name| vars.get(name).cloned());
    })
    .await
}

/// Where a browser ended up after a redirect from Pulse.
#[derive(Debug, Clone)]
pub struct Landing {
    pub location: String,
}

impl Landing {
    fn url(&self) -> Option<Url> {
        Url::parse("http://pulse.invalid").ok()?.join(&self.location).ok()
    }

    pub fn path(&self) -> String {
        self.url().map(|u| u.path().to_owned()).unwrap_or_default()
    }

    pub fn param(&self, name: &str) -> Option<String> {
        self.url()?.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
    }

    /// The `oidc_error` code when this is the login page's error redirect.
    pub fn error(&self) -> Option<String> {
        (self.path() == "/login" && self.param("oidc").as_deref() == Some("error"))
            .then(|| self.param("oidc_error"))
            .flatten()
    }
}

/// A browser without JavaScript: one cookie jar, redirects followed by hand.
pub struct Browser {
    client: Client,
    cookies: Arc<Jar>,
    pulse: String,
}

impl Browser {
    pub fn new(app: &TestApp) -> Result<Browser, AnyError> {
        let cookies = Arc::new(Jar::default());
        let client = Client::builder().cookie_provider(cookies.clone()).redirect(redirect::Policy::none()).build()?;
        Ok(Browser { client, cookies, pulse: app.address() })
    }

    /// The value of Pulse's session cookie in this browser's jar.
    pub fn session_cookie(&self) -> Option<String> {
        let url = Url::parse(&self.pulse).ok()?;
        let header = self.cookies.cookies(&url)?;
        let prefix = format!("{SESSION_COOKIE_NAME}=");
        header.to_str().ok()?.split("; ").find_map(|pair| pair.strip_prefix(prefix.as_str()).map(str::to_owned))
    }

    /// GETs a Pulse URL that must redirect (never a 5xx) and returns where to.
    pub async fn follow(&self, path_and_query: &str) -> Result<Landing, AnyError> {
        let url = if path_and_query.starts_with("http") {
            path_and_query.to_owned()
        } else {
            format!("{}{path_and_query}", self.pulse)
        };
        let shown: String = url.chars().take(120).collect();
        let response =
            self.client.get(url.as_str()).send().await.map_err(|err| format!("GET {shown}: {}", err.without_url()))?;
        let status = response.status();
        if !status.is_redirection() {
            let body: String = response.text().await.unwrap_or_default().chars().take(500).collect();
            return Err(format!("GET {shown} answered {status}, not a redirect: {body}").into());
        }
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        Ok(Landing { location: location.to_owned() })
    }

    /// `GET /api/oidc/login?returnTo=…`: must send the browser to the provider.
    pub async fn begin(&self, op: &TestOp, return_to: &str) -> Result<Url, AnyError> {
        let encoded: String = url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect();
        let landing = self.follow(&format!("/api/oidc/login?returnTo={encoded}")).await?;
        let url = Url::parse(&landing.location)
            .map_err(|err| format!("not sent to the provider ({err}): {}", landing.location))?;
        if !url.as_str().starts_with(&format!("{}/authorize?", op.issuer())) {
            return Err(format!("not sent to the provider's authorization endpoint: {url}").into());
        }
        Ok(url)
    }

    /// Visits the provider's authorization endpoint; returns the callback URL it redirects to.
    pub async fn authorize(&self, authorize_url: &Url) -> Result<String, AnyError> {
        let response = self.client.get(authorize_url.clone()).send().await?;
        if response.status() != StatusCode::FOUND {
            let status = response.status();
            return Err(format!("the provider answered {status}: {}", response.text().await.unwrap_or_default()).into());
        }
        let location = response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        Ok(location.to_owned())
    }

    /// The whole round trip: Pulse → provider → Pulse's callback → wherever Pulse sends us.
    pub async fn sign_in(&self, op: &TestOp, return_to: &str) -> Result<Landing, AnyError> {
        let authorize_url = self.begin(op, return_to).await?;
        let callback = self.authorize(&authorize_url).await?;
        self.follow(&callback).await
    }

    pub async fn status(&self) -> Result<Value, AnyError> {
        Ok(self.client.get(format!("{}/api/security/status", self.pulse)).send().await?.json().await?)
    }

    pub async fn is_signed_in(&self) -> Result<bool, AnyError> {
        Ok(self.status().await?["authenticated"] == true)
    }

    /// Asserts a refused sign-in: the login page with `code`, and no session.
    pub async fn assert_refused(&self, landing: &Landing, code: &str) -> TestResult {
        assert_eq!(
            landing.error().as_deref(),
            Some(code),
            "expected oidc_error={code}, landed on {}",
            landing.location
        );
        assert!(!self.is_signed_in().await?, "a refused sign-in ({code}) must not leave a session");
        Ok(())
    }

    /// Asserts a completed sign-in: sent to `return_to`, signed in by SSO.
    pub async fn assert_signed_in(&self, landing: &Landing, return_to: &str) -> Result<Value, AnyError> {
        assert_eq!(landing.location, return_to, "expected to land on {return_to}");
        let status = self.status().await?;
        assert_eq!(status["authenticated"], true, "{status}");
        assert_eq!(status["user"]["authMethod"], "oidc", "{status}");
        Ok(status)
    }
}

/// The SSO accounts in Pulse's database: `(id, username, issuer, subject)`.
pub async fn sso_users(app: &TestApp) -> Result<Vec<(i64, String, String, String)>, AnyError> {
    Ok(sqlx::query_as(
        "SELECT id, username, oidc_issuer, oidc_subject FROM users WHERE oidc_subject IS NOT NULL ORDER BY id",
    )
    .fetch_all(&app.core().db)
    .await?)
}

/// Reads every file under `dir` (the database, its WAL, keys), for secret scanning.
pub fn all_file_bytes(dir: &std::path::Path) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>, AnyError> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else {
                found.push((path.clone(), std::fs::read(&path)?));
            }
        }
    }
    Ok(found)
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}

/// A port on which nothing listens (bound, then released).
pub async fn closed_port() -> Result<SocketAddr, AnyError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(listener.local_addr()?)
}
