//! A minimal OpenID provider for the benchmark: every authorization request is approved at once
//! (a user already signed in at the IdP), ID tokens are RS256-signed with a fixture key, refresh
//! tokens rotate with reuse detection (a used one presented again revokes its family, RFC 9700
//! §4.14.2), and it records what the benchmark needs: how long each token request took inside
//! the provider, and every refresh grant's outcome.
//!
//! Adapted from `server/tests/oidc_support`, without the knobs for misbehaving.
use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, AtomicUsize, Ordering},
        Arc, Mutex, MutexGuard,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
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
use rand::{distributions::Alphanumeric, Rng};
use ring::{
    rand::SystemRandom,
    signature::{RsaKeyPair, RSA_PKCS1_SHA256},
};
use serde_json::{json, Map, Value};

pub const CLIENT_ID: &str = "pulse-bench";
pub const CLIENT_SECRET: &str = "pulse-bench-secret-0123456789";
const KID: &str = "bench-key-a";
/// A test-only key (a copy of server/tests/fixtures/op-key-a.pem); it protects nothing.
const KEY_PEM: &str = include_str!("../fixtures/op-key-a.pem");
/// Distinct users the provider signs in, in turn (most real sign-ins are returning users).
const USERS: u64 = 500;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

/// `expires_in` of access tokens handed out by the authorization-code grant.
#[derive(Debug, Clone, Copy)]
pub enum CodeGrantExpiry {
    Seconds(u64),
    /// Whatever is left until this Unix time (at least 1 s): sessions made over several seconds
    /// then all expire together.
    At(f64),
}

/// Outcomes of `grant_type=refresh_token` requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshCounts {
    pub issued: usize,
    pub reuse_detected: usize,
    pub family_revoked: usize,
    pub unknown: usize,
}

impl RefreshCounts {
    pub fn total(&self) -> usize {
        self.issued + self.reuse_detected + self.family_revoked + self.unknown
    }

    pub fn since(&self, earlier: &RefreshCounts) -> RefreshCounts {
        RefreshCounts {
            issued: self.issued - earlier.issued,
            reuse_detected: self.reuse_detected - earlier.reuse_detected,
            family_revoked: self.family_revoked - earlier.family_revoked,
            unknown: self.unknown - earlier.unknown,
        }
    }
}

/// Counters of the provider's other endpoints, to show that discovery and JWKS stay cached.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fetches {
    pub discovery: usize,
    pub jwks: usize,
    pub userinfo: usize,
}

struct Pending {
    nonce: Option<String>,
    code_challenge: String,
    redirect_uri: String,
    sub: String,
}

struct RefreshEntry {
    family: usize,
    used: bool,
    sub: String,
}

#[derive(Default)]
struct RefreshBook {
    /// Refresh token → its family, whether it was already exchanged, and the subject.
    tokens: HashMap<String, RefreshEntry>,
    revoked_families: HashSet<usize>,
    families: usize,
}

struct OpState {
    issuer: String,
    key: RsaKeyPair,
    jwk: Value,
    rng: SystemRandom,
    code_expiry: Mutex<CodeGrantExpiry>,
    refresh_expires_in: u64,
    refresh_delay: Duration,
    logins: AtomicU64,
    pending: Mutex<HashMap<String, Pending>>,
    refresh_book: Mutex<RefreshBook>,
    refresh_counts: Mutex<RefreshCounts>,
    /// Time spent inside the token endpoint per authorization code (removed when read).
    code_grant_times: Mutex<HashMap<String, Duration>>,
    /// Which subject (and so which access token owner) each access token was issued to.
    access_tokens: Mutex<HashMap<String, String>>,
    discovery_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
    userinfo_calls: AtomicUsize,
    /// Total nanoseconds spent in userinfo (subtracted from the callback like the token request).
    userinfo_nanos: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running provider; it lives as long as the benchmark's runtime.
#[derive(Clone)]
pub struct TestOp {
    state: Arc<OpState>,
}

impl TestOp {
    /// Serves the provider on 127.0.0.1 (a free port). Refresh grants wait `refresh_delay` before
    /// answering, like a real provider's round trip, and hand out `refresh_expires_in`.
    pub async fn start(refresh_delay: Duration, refresh_expires_in: u64) -> Result<TestOp, AnyError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let issuer = format!("http://{}", listener.local_addr()?);
        let (key, jwk) = load_key()?;
        let state = Arc::new(OpState {
            issuer,
            key,
            jwk,
            rng: SystemRandom::new(),
            code_expiry: Mutex::new(CodeGrantExpiry::Seconds(3600)),
            refresh_expires_in,
            refresh_delay,
            logins: AtomicU64::new(0),
            pending: Mutex::new(HashMap::new()),
            refresh_book: Mutex::new(RefreshBook::default()),
            refresh_counts: Mutex::new(RefreshCounts::default()),
            code_grant_times: Mutex::new(HashMap::new()),
            access_tokens: Mutex::new(HashMap::new()),
            discovery_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
            userinfo_calls: AtomicUsize::new(0),
            userinfo_nanos: AtomicU64::new(0),
        });
        let router = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(state.clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                eprintln!("test OpenID provider stopped: {err}");
            }
        });
        Ok(TestOp { state })
    }

    pub fn issuer(&self) -> String {
        self.state.issuer.clone()
    }

    pub fn set_code_grant_expiry(&self, expiry: CodeGrantExpiry) {
        *lock(&self.state.code_expiry) = expiry;
    }

    /// How long the token endpoint took for this authorization code (once; `None` if unknown).
    pub fn take_code_grant_time(&self, code: &str) -> Option<Duration> {
        lock(&self.state.code_grant_times).remove(code)
    }

    pub fn refresh_counts(&self) -> RefreshCounts {
        *lock(&self.state.refresh_counts)
    }

    pub fn fetches(&self) -> Fetches {
        Fetches {
            discovery: self.state.discovery_fetches.load(Ordering::Relaxed),
            jwks: self.state.jwks_fetches.load(Ordering::Relaxed),
            userinfo: self.state.userinfo_calls.load(Ordering::Relaxed),
        }
    }

    pub fn userinfo_time(&self) -> Duration {
        Duration::from_nanos(self.state.userinfo_nanos.load(Ordering::Relaxed))
    }
}

fn load_key() -> Result<(RsaKeyPair, Value), AnyError> {
    let body: String = KEY_PEM.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = STANDARD.decode(body)?;
    let pair = RsaKeyPair::from_pkcs8(&der).map_err(|err| format!("fixture key: {err}"))?;
    let (n, e) = rsa_public_numbers(pair.public().as_ref()).ok_or("fixture key: unexpected public key DER")?;
    let jwk = json!({
        "kty": "RSA", "use": "sig", "alg": "RS256", "kid": KID,
        "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
    });
    Ok((pair, jwk))
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

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

fn refuse(status: StatusCode, error: &str, why: &str) -> Response {
    json_response(
        status,
        json!({ "error": error, "error_description": format!("bench OP: {why}") }),
    )
}

impl OpState {
    fn id_token(&self, sub: &str, nonce: Option<&str>) -> Result<String, String> {
        let now = unix_now() as i64;
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(sub));
        claims.insert("aud".into(), json!(CLIENT_ID));
        claims.insert("exp".into(), json!(now + 300));
        claims.insert("iat".into(), json!(now));
        if let Some(nonce) = nonce {
            claims.insert("nonce".into(), json!(nonce));
        }
        // Username, email and groups in the ID token, so Pulse has no reason to call userinfo.
        claims.insert("preferred_username".into(), json!(sub));
        claims.insert("email".into(), json!(format!("{sub}@bench.example")));
        claims.insert("groups".into(), json!(["pulse-users"]));
        let jose = json!({ "alg": "RS256", "typ": "JWT", "kid": KID });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(jose.to_string()),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        );
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut signature)
            .map_err(|_| "RSA signing failed".to_owned())?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }

    fn code_grant_expires_in(&self) -> u64 {
        match *lock(&self.code_expiry) {
            CodeGrantExpiry::Seconds(seconds) => seconds,
            CodeGrantExpiry::At(at) => (at - unix_now()).ceil().max(1.0) as u64,
        }
    }
}

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

async fn discovery(State(op): State<Arc<OpState>>) -> Response {
    op.discovery_fetches.fetch_add(1, Ordering::Relaxed);
    let base = &op.issuer;
    json_response(
        StatusCode::OK,
        json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "jwks_uri": format!("{base}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "groups", "offline_access"],
        }),
    )
}

async fn jwks(State(op): State<Arc<OpState>>) -> Response {
    op.jwks_fetches.fetch_add(1, Ordering::Relaxed);
    json_response(StatusCode::OK, json!({ "keys": [op.jwk.clone()] }))
}

/// Approves at once: a redirect back with a code, as the IdP of a user already signed in does.
async fn authorize(State(op): State<Arc<OpState>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let param = |name: &str| query.get(name).cloned().unwrap_or_default();
    let bad_request =
        |why: &str| (StatusCode::BAD_REQUEST, format!("bench OP refuses the request: {why}")).into_response();
    if param("response_type") != "code" {
        return bad_request("response_type must be code");
    }
    if param("client_id") != CLIENT_ID {
        return bad_request("unknown client_id");
    }
    if param("code_challenge_method") != "S256" || param("code_challenge").is_empty() {
        return bad_request("PKCE S256 is required");
    }
    let Ok(mut back) = url::Url::parse(&param("redirect_uri")) else {
        return bad_request("redirect_uri is not a URL");
    };
    let login = op.logins.fetch_add(1, Ordering::Relaxed);
    let code = random_token("code-");
    lock(&op.pending).insert(
        code.clone(),
        Pending {
            nonce: query.get("nonce").cloned(),
            code_challenge: param("code_challenge"),
            redirect_uri: param("redirect_uri"),
            sub: format!("bench-user-{}", login % USERS),
        },
    );
    {
        let mut pairs = back.query_pairs_mut();
        pairs.append_pair("code", &code);
        if let Some(state) = query.get("state") {
            pairs.append_pair("state", state);
        }
    }
    (StatusCode::FOUND, [(header::LOCATION, back.to_string())]).into_response()
}

async fn token(
    State(op): State<Arc<OpState>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let started = Instant::now();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let expected = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    if authorization != Some(expected.as_str()) {
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
    let code = form.get("code").cloned().unwrap_or_default();
    // Codes are single use.
    let Some(pending) = lock(&op.pending).remove(&code) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code");
    };
    if form.get("redirect_uri") != Some(&pending.redirect_uri) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "redirect_uri differs from the authorization request",
        );
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()));
    if verifier.is_empty() || challenge != pending.code_challenge {
        return refuse(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "PKCE verifier does not match the challenge",
        );
    }
    let access_token = random_token("at-");
    let refresh_token = random_token("rt-");
    let id_token = match op.id_token(&pending.sub, pending.nonce.as_deref()) {
        Ok(token) => token,
        Err(why) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &why),
    };
    {
        let mut book = lock(&op.refresh_book);
        book.families += 1;
        let family = book.families;
        book.tokens.insert(
            refresh_token.clone(),
            RefreshEntry {
                family,
                used: false,
                sub: pending.sub.clone(),
            },
        );
    }
    lock(&op.access_tokens).insert(access_token.clone(), pending.sub.clone());
    let body = token_body(
        &access_token,
        op.code_grant_expires_in(),
        Some(&id_token),
        Some(&refresh_token),
    );
    let response = json_response(StatusCode::OK, body);
    lock(&op.code_grant_times).insert(code, started.elapsed());
    response
}

/// Single-use refresh tokens with reuse detection; a new access, refresh and ID token.
async fn refresh_grant(op: &OpState, form: &HashMap<String, String>) -> Response {
    if !op.refresh_delay.is_zero() {
        tokio::time::sleep(op.refresh_delay).await;
    }
    let presented = form.get("refresh_token").cloned().unwrap_or_default();
    let count = |bump: fn(&mut RefreshCounts)| bump(&mut lock(&op.refresh_counts));
    let rotated = random_token("rt-");
    let sub = {
        let mut book = lock(&op.refresh_book);
        let Some(entry) = book.tokens.get_mut(&presented) else {
            drop(book);
            count(|c| c.unknown += 1);
            return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "unknown refresh token");
        };
        let (family, used, sub) = (entry.family, entry.used, entry.sub.clone());
        entry.used = true;
        if book.revoked_families.contains(&family) {
            drop(book);
            count(|c| c.family_revoked += 1);
            return refuse(StatusCode::BAD_REQUEST, "invalid_grant", "refresh token revoked");
        }
        if used {
            book.revoked_families.insert(family);
            drop(book);
            count(|c| c.reuse_detected += 1);
            return refuse(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "refresh token reused; family revoked",
            );
        }
        book.tokens.insert(
            rotated.clone(),
            RefreshEntry {
                family,
                used: false,
                sub: sub.clone(),
            },
        );
        sub
    };
    let access_token = random_token("at-");
    let id_token = match op.id_token(&sub, None) {
        Ok(token) => token,
        Err(why) => return refuse(StatusCode::INTERNAL_SERVER_ERROR, "server_error", &why),
    };
    lock(&op.access_tokens).insert(access_token.clone(), sub);
    count(|c| c.issued += 1);
    json_response(
        StatusCode::OK,
        token_body(&access_token, op.refresh_expires_in, Some(&id_token), Some(&rotated)),
    )
}

async fn userinfo(State(op): State<Arc<OpState>>, headers: HeaderMap) -> Response {
    let started = Instant::now();
    op.userinfo_calls.fetch_add(1, Ordering::Relaxed);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(sub) = lock(&op.access_tokens).get(token).cloned() else {
        return json_response(StatusCode::UNAUTHORIZED, json!({ "error": "invalid_token" }));
    };
    let response = json_response(
        StatusCode::OK,
        json!({ "sub": sub, "preferred_username": sub, "email": format!("{sub}@bench.example"), "groups": ["pulse-users"] }),
    );
    op.userinfo_nanos
        .fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    response
}
