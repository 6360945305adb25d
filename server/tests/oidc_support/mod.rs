//! A test OpenID provider that each test can misconfigure at will, and a browser that walks Pulse's
//! authorization-code flow against it by hand (cookie jar kept, redirects not followed).
//!
//! Beyond sign-in the provider rotates refresh tokens with reuse detection (a used one presented
//! again revokes its whole family), publishes an end-session endpoint, signs back-channel logout
//! tokens, can be held, failed or taken off the network, and can follow the test's manual clock.
//!
//! The provider runs in the test process on 127.0.0.1:0. It signs ID tokens with the test-only RSA
//! keys in `tests/fixtures/op-key-{a,b,c}.pem` (made once with
//! `openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048`; generating keys at test time
//! in a debug build is slow). They protect nothing.
// Every test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::{
    collections::{HashMap, HashSet},
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
use pulse_core::clock::ManualClock;
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

impl TokenFailure {
    /// 400 `invalid_grant`: the provider's verdict that the grant (and so the session) is over.
    pub fn invalid_grant() -> TokenFailure {
        TokenFailure {
            status: 400,
            content_type: "application/json",
            body: r#"{"error":"invalid_grant","error_description":"test OP: refresh token revoked"}"#.to_owned(),
        }
    }

    /// 500 `server_error`: the provider is having a bad day, which says nothing about the session.
    pub fn server_error() -> TokenFailure {
        TokenFailure {
            status: 500,
            content_type: "application/json",
            body: r#"{"error":"server_error","error_description":"test OP: down for maintenance"}"#.to_owned(),
        }
    }
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
    /// `expires_in` of every access token handed out, in seconds.
    pub expires_in: u64,
    /// What the token endpoint answers to `grant_type=refresh_token` instead of tokens
    /// (`TokenFailure::invalid_grant()`, `TokenFailure::server_error()`, ...).
    pub refresh_failure: Option<TokenFailure>,
    /// Whether a refresh grant hands out a new refresh token (and retires the presented one).
    pub rotate_refresh_tokens: bool,
    /// Whether a refresh grant hands out a new ID token (with the claims in force at that time).
    pub id_token_on_refresh: bool,
    /// Whether discovery names `<base>/end-session` as the `end_session_endpoint`.
    pub publish_end_session: bool,
    /// `id_token_signing_alg_values_supported` in the discovery document.
    pub id_token_algs: Vec<&'static str>,
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
            expires_in: 300,
            refresh_failure: None,
            rotate_refresh_tokens: true,
            id_token_on_refresh: true,
            publish_end_session: true,
            id_token_algs: vec!["RS256"],
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

/// What the provider made of a refresh-token grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    /// New tokens handed out (appended to `OpRecord::issued`).
    Issued,
    /// `OpBehaviour::refresh_failure` answered.
    Failed,
    /// Never issued by this provider.
    Unknown,
    /// A token already exchanged came back: the whole family is revoked now (RFC 9700 §4.14.2).
    ReuseDetected,
    /// A token of a family revoked earlier.
    FamilyRevoked,
}

/// One `grant_type=refresh_token` request.
#[derive(Debug, Clone)]
pub struct RefreshGrant {
    /// The refresh token presented.
    pub presented: String,
    pub outcome: RefreshOutcome,
}

#[derive(Debug, Clone, Default)]
pub struct OpRecord {
    pub authorize_requests: Vec<HashMap<String, String>>,
    /// Every token endpoint request, authorization code and refresh grants alike.
    pub token_requests: Vec<TokenRequest>,
    pub userinfo_authorizations: Vec<Option<String>>,
    pub discovery_fetches: usize,
    pub jwks_fetches: usize,
    /// Tokens handed out, by the code grant and by refresh grants, in order.
    pub issued: Vec<Issued>,
    /// Refresh grants, in the order they were answered.
    pub refresh_grants: Vec<RefreshGrant>,
    /// Queries of browsers sent to the end-session endpoint.
    pub end_session_requests: Vec<HashMap<String, String>>,
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

/// Refresh tokens in families (one per sign-in): each is single use, and presenting a used one
/// revokes its family, as providers with refresh-token rotation do.
#[derive(Debug, Default)]
struct RefreshBook {
    /// Token → (family, already exchanged).
    tokens: HashMap<String, (usize, bool)>,
    revoked_families: HashSet<usize>,
    families: usize,
}

impl RefreshBook {
    fn new_family(&mut self, token: &str) {
        self.families += 1;
        self.tokens.insert(token.to_owned(), (self.families, false));
    }
}

struct OpState {
    base: String,
    behaviour: Mutex<OpBehaviour>,
    record: Mutex<OpRecord>,
    grants: Mutex<HashMap<String, Grant>>,
    refresh_book: Mutex<RefreshBook>,
    /// While `true`, refresh grants are held after arriving (see `TestOp::hold_refreshes`).
    refresh_hold: tokio::sync::watch::Sender<bool>,
    /// How many refresh grants have arrived, held or not.
    refresh_arrivals: tokio::sync::watch::Sender<usize>,
    /// The clock for `iat`/`exp`; the system clock unless `TestOp::follow_clock` was called.
    clock: Mutex<Option<ManualClock>>,
    keys: Vec<SigningKey>,
}

/// Locks a mutex; a test that panicked while holding it must not hide the next failure.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// How to take the provider off the network: the shutdown signal and the serving task.
type Serving = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
);

pub struct TestOp {
    state: Arc<OpState>,
    serving: Mutex<Option<Serving>>,
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
            refresh_book: Mutex::new(RefreshBook::default()),
            refresh_hold: tokio::sync::watch::Sender::new(false),
            refresh_arrivals: tokio::sync::watch::Sender::new(0),
            clock: Mutex::new(None),
            keys,
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .route("/end-session", get(end_session))
            .with_state(state.clone());
        // Ends with the test's runtime, or at `stop`.
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(TestOp {
            state,
            serving: Mutex::new(Some((shutdown, serving))),
        })
    }

    /// Takes the provider off the network: the listener is closed and open connections end, so
    /// Pulse's next request to it fails to connect (its discovery document stays cached).
    pub async fn stop(&self) {
        let running = lock(&self.serving).take();
        if let Some((shutdown, serving)) = running {
            let _ = shutdown.send(());
            let _ = tokio::time::timeout(std::time::Duration::from_secs(10), serving).await;
        }
    }

    /// Stamps `iat`/`exp` of the tokens it signs from `clock` (the test's manual clock) instead
    /// of the system clock, so moving Pulse's time moves the provider's too.
    pub fn follow_clock(&self, clock: &ManualClock) {
        *lock(&self.state.clock) = Some(clock.clone());
    }

    /// From now on refresh grants are counted on arrival but not answered until
    /// `release_refreshes`: a provider slow enough that concurrent requests pile up behind it.
    pub fn hold_refreshes(&self) {
        self.state.refresh_hold.send_replace(true);
    }

    pub fn release_refreshes(&self) {
        self.state.refresh_hold.send_replace(false);
    }

    /// Waits until at least `count` refresh grants have arrived (held ones included).
    pub async fn refresh_arrivals_reach(&self, count: usize) {
        let mut arrivals = self.state.refresh_arrivals.subscribe();
        let _ = arrivals.wait_for(|arrived| *arrived >= count).await;
    }

    /// A back-channel logout token (Back-Channel Logout 1.0 §2.4): `iss`, `aud`, `iat` (the
    /// provider's clock), a fresh `jti` and the logout event, with `claims` set over them
    /// (`Value::Null` removes one; add `sub` and/or `sid`), signed as `signature` says with key A.
    pub fn logout_token(&self, signature: Signature, claims: &[(&str, Value)]) -> Result<String, AnyError> {
        let mut all = Map::new();
        all.insert("iss".into(), json!(self.state.base));
        all.insert("aud".into(), json!(CLIENT_ID));
        all.insert("iat".into(), json!(self.state.now()));
        all.insert("jti".into(), json!(random_token("jti-")));
        all.insert(
            "events".into(),
            json!({ "http://schemas.openid.net/event/backchannel-logout": {} }),
        );
        let overrides: Map<String, Value> = claims
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        apply_overrides(&mut all, &overrides);
        Ok(self.state.sign(&all, "logout+jwt", signature, TestKey::A, true)?)
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
    let tail: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    format!("{prefix}{tail}")
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Builds the JSON answer of a successful token request.
fn token_body(access_token: &str, expires_in: u64, id_token: Option<&str>, refresh_token: Option<&str>) -> Value {
    let mut body = json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": expires_in });
    if let Some(id_token) = id_token {
        body["id_token"] = json!(id_token);
    }
    if let Some(refresh_token) = refresh_token {
        body["refresh_token"] = json!(refresh_token);
    }
    body
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
        behaviour
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .unwrap_or(DEFAULT_SUB)
            .to_owned()
    }

    fn key(&self, key: TestKey) -> &SigningKey {
        // Loaded in declaration order, so the discriminant is the index.
        &self.keys[key as usize]
    }

    fn now(&self) -> i64 {
        match lock(&self.clock).as_ref() {
            Some(clock) => pulse_core::clock::Clock::now(clock).unix_timestamp(),
            None => unix_now(),
        }
    }

    /// An ID token for `behaviour`; `nonce` is the authorization request's (none at refresh).
    fn mint_id_token(
        &self,
        behaviour: &OpBehaviour,
        nonce: Option<&str>,
        access_token: &str,
    ) -> Result<String, String> {
        let now = self.now();
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.base));
        claims.insert("sub".into(), json!(DEFAULT_SUB));
        claims.insert("aud".into(), json!(CLIENT_ID));
        claims.insert("exp".into(), json!(now + 300));
        claims.insert("iat".into(), json!(now));
        if let Some(nonce) = nonce {
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
        self.sign(
            &claims,
            "JWT",
            behaviour.signature,
            behaviour.sign_with,
            behaviour.kid_in_header,
        )
    }

    /// A JWT of `claims`, signed as `how` says (with `key` for RS256).
    fn sign(
        &self,
        claims: &Map<String, Value>,
        typ: &str,
        how: Signature,
        key: TestKey,
        kid_in_header: bool,
    ) -> Result<String, String> {
        let payload = b64_json(&Value::Object(claims.clone()));
        let mut jose = json!({ "typ": typ });
        if kid_in_header {
            jose["kid"] = json!(key.kid());
        }
        match how {
            Signature::Rs256 | Signature::Rs256Tampered => {
                jose["alg"] = json!("RS256");
                let input = format!("{}.{payload}", b64_json(&jose));
                let pair = &self.key(key).pair;
                let mut signature = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    input.as_bytes(),
                    &mut signature,
                )
                .map_err(|_| "RSA signing failed".to_owned())?;
                if how == Signature::Rs256Tampered {
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
    let mut document = json!({
        "issuer": behaviour.discovery_issuer.clone().unwrap_or_else(|| base.clone()),
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": behaviour.token_endpoint.clone().unwrap_or_else(|| format!("{base}/token")),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "jwks_uri": format!("{base}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": behaviour.id_token_algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
    });
    if behaviour.publish_end_session {
        document["end_session_endpoint"] = json!(format!("{base}/end-session"));
    }
    json_response(StatusCode::OK, document)
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
            pairs
                .append_pair("error", error)
                .append_pair("error_description", description);
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
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    lock(&op.record).token_requests.push(TokenRequest {
        authorization: authorization.clone(),
        form: form.clone(),
    });
    let behaviour = lock(&op.behaviour).clone();
    if let Some(failure) = &behaviour.token_failure {
        let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (
            status,
            [(header::CONTENT_TYPE, failure.content_type)],
            failure.body.clone(),
        )
            .into_response();
    }
    let refuse = |status: StatusCode, error: &str, why: &str| {
        json_response(
            status,
            json!({ "error": error, "error_description": format!("test OP: {why}") }),
        )
    };
    if authorization != Some(basic_auth(CLIENT_ID, CLIENT_SECRET)) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_secret_basic expected",
        );
    }
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {}
        Some("refresh_token") => return refresh_grant(&op, &form).await,
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "authorization_code expected",
            )
        }
    }
    // Codes are single use.
    let Some(grant) = form.get("code").and_then(|code| lock(&op.grants).remove(code)) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code");
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        );
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()));
    if verifier.is_empty() || challenge != grant.code_challenge {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verifier does not match the challenge",
        );
    }
    let access_token = random_token("at-");
    let refresh_token = behaviour.issue_refresh_token.then(|| random_token("rt-"));
    let id_token = match op.mint_id_token(&behaviour, grant.nonce.as_deref(), &access_token) {
        Ok(token) => token,
        Err(why) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &why),
    };
    if let Some(refresh_token) = &refresh_token {
        lock(&op.refresh_book).new_family(refresh_token);
    }
    lock(&op.record).issued.push(Issued {
        access_token: access_token.clone(),
        refresh_token: refresh_token.clone(),
        id_token: id_token.clone(),
    });
    json_response(
        StatusCode::OK,
        token_body(
            &access_token,
            behaviour.expires_in,
            Some(&id_token),
            refresh_token.as_deref(),
        ),
    )
}

/// `grant_type=refresh_token` (the client is already authenticated): single-use refresh tokens
/// with reuse detection, a new access token and, as configured, a rotated refresh token and a new
/// ID token carrying the claims in force now.
async fn refresh_grant(op: &OpState, form: &HashMap<String, String>) -> Response {
    let presented = form.get("refresh_token").cloned().unwrap_or_default();
    op.refresh_arrivals.send_modify(|arrived| *arrived += 1);
    let mut hold = op.refresh_hold.subscribe();
    let _ = hold.wait_for(|held| !held).await;

    let behaviour = lock(&op.behaviour).clone();
    let answer = |outcome: RefreshOutcome, response: Response| {
        lock(&op.record).refresh_grants.push(RefreshGrant {
            presented: presented.clone(),
            outcome,
        });
        response
    };
    let invalid_grant = |why: &str| {
        let body = json!({ "error": "invalid_grant", "error_description": format!("test OP: {why}") });
        json_response(StatusCode::BAD_REQUEST, body)
    };
    if let Some(failure) = &behaviour.refresh_failure {
        let status = StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let response = (
            status,
            [(header::CONTENT_TYPE, failure.content_type)],
            failure.body.clone(),
        )
            .into_response();
        return answer(RefreshOutcome::Failed, response);
    }
    let rotated = behaviour.rotate_refresh_tokens.then(|| random_token("rt-"));
    {
        let mut book = lock(&op.refresh_book);
        let Some(&(family, used)) = book.tokens.get(&presented) else {
            drop(book);
            return answer(RefreshOutcome::Unknown, invalid_grant("unknown refresh token"));
        };
        if book.revoked_families.contains(&family) {
            drop(book);
            return answer(RefreshOutcome::FamilyRevoked, invalid_grant("refresh token revoked"));
        }
        if used {
            book.revoked_families.insert(family);
            drop(book);
            return answer(
                RefreshOutcome::ReuseDetected,
                invalid_grant("refresh token reused; family revoked"),
            );
        }
        if let Some(rotated) = &rotated {
            book.tokens.insert(presented.clone(), (family, true));
            book.tokens.insert(rotated.clone(), (family, false));
        }
    }
    let access_token = random_token("at-");
    let id_token = if behaviour.id_token_on_refresh {
        match op.mint_id_token(&behaviour, None, &access_token) {
            Ok(token) => Some(token),
            Err(why) => {
                let body = json!({ "error": "server_error", "error_description": why });
                return answer(
                    RefreshOutcome::Failed,
                    json_response(StatusCode::INTERNAL_SERVER_ERROR, body),
                );
            }
        }
    } else {
        None
    };
    lock(&op.record).issued.push(Issued {
        access_token: access_token.clone(),
        refresh_token: rotated.clone(),
        id_token: id_token.clone().unwrap_or_default(),
    });
    let body = token_body(
        &access_token,
        behaviour.expires_in,
        id_token.as_deref(),
        rotated.as_deref(),
    );
    answer(RefreshOutcome::Issued, json_response(StatusCode::OK, body))
}

/// RP-initiated logout: records where the browser was sent from and says it is signed out.
async fn end_session(State(op): State<Arc<OpState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    lock(&op.record).end_session_requests.push(query);
    (StatusCode::OK, "test OP: signed out").into_response()
}

async fn userinfo(State(op): State<Arc<OpState>>, headers: HeaderMap) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    lock(&op.record).userinfo_authorizations.push(authorization.clone());
    let known = {
        let record = lock(&op.record);
        record
            .issued
            .iter()
            .any(|issued| authorization.as_deref() == Some(&format!("Bearer {}", issued.access_token)))
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
    spawn_pulse_with(op, extra, |_| {}).await
}

/// Like `spawn_pulse`, with other settings changed by `configure` (e.g. an administrator).
pub async fn spawn_pulse_with(
    op: &TestOp,
    extra: &[(&str, &str)],
    configure: impl FnOnce(&mut pulse_core::config::RawConfig),
) -> TestApp {
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
        configure(raw);
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
        self.url()?
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
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
        let client = Client::builder()
            .cookie_provider(cookies.clone())
            .redirect(redirect::Policy::none())
            .build()?;
        Ok(Browser {
            client,
            cookies,
            pulse: app.address(),
        })
    }

    /// The browser's HTTP client (its cookie jar, redirects not followed), for any other request.
    pub fn http(&self) -> &Client {
        &self.client
    }

    /// A Pulse URL from a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.pulse)
    }

    /// The value of Pulse's session cookie in this browser's jar.
    pub fn session_cookie(&self) -> Option<String> {
        let url = Url::parse(&self.pulse).ok()?;
        let header = self.cookies.cookies(&url)?;
        let prefix = format!("{SESSION_COOKIE_NAME}=");
        header
            .to_str()
            .ok()?
            .split("; ")
            .find_map(|pair| pair.strip_prefix(prefix.as_str()).map(str::to_owned))
    }

    /// GETs a Pulse URL that must redirect (never a 5xx) and returns where to.
    pub async fn follow(&self, path_and_query: &str) -> Result<Landing, AnyError> {
        let url = if path_and_query.starts_with("http") {
            path_and_query.to_owned()
        } else {
            format!("{}{path_and_query}", self.pulse)
        };
        let shown: String = url.chars().take(120).collect();
        let response = self
            .client
            .get(url.as_str())
            .send()
            .await
            .map_err(|err| format!("GET {shown}: {}", err.without_url()))?;
        let status = response.status();
        if !status.is_redirection() {
            let body: String = response.text().await.unwrap_or_default().chars().take(500).collect();
            return Err(format!("GET {shown} answered {status}, not a redirect: {body}").into());
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(Landing {
            location: location.to_owned(),
        })
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
            return Err(format!(
                "the provider answered {status}: {}",
                response.text().await.unwrap_or_default()
            )
            .into());
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Ok(location.to_owned())
    }

    /// The whole round trip: Pulse → provider → Pulse's callback → wherever Pulse sends us.
    pub async fn sign_in(&self, op: &TestOp, return_to: &str) -> Result<Landing, AnyError> {
        let authorize_url = self.begin(op, return_to).await?;
        let callback = self.authorize(&authorize_url).await?;
        self.follow(&callback).await
    }

    pub async fn status(&self) -> Result<Value, AnyError> {
        Ok(self
            .client
            .get(format!("{}/api/security/status", self.pulse))
            .send()
            .await?
            .json()
            .await?)
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
        assert!(
            !self.is_signed_in().await?,
            "a refused sign-in ({code}) must not leave a session"
        );
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
