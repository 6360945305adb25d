//! Boots the real Pulse server on port 0 with a temporary data directory and a manual clock, and
//! drives it over HTTP with a cookie jar and redirects off. Each test gets its own server.
// Every test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use pulse_core::{
    clock::ManualClock,
    config::{Config, RawConfig},
    secrecy::SecretString,
    Core, StartupReport,
};
use pulse_server::{Application, BuildError, SESSION_COOKIE_NAME};
use reqwest::{header, redirect, Client, Response};
use serde_json::{json, Value};
use tempfile::TempDir;
use time::OffsetDateTime;
use tokio::{sync::oneshot, task::JoinHandle};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The administrator that `spawn_app_with_admin` creates through PULSE_AUTH_USER/PULSE_AUTH_PASS.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASS: &str = "correct horse battery staple";

/// Raw settings as the CLI would give them: a data directory and any free port.
pub fn raw_config(data_dir: &Path) -> RawConfig {
    RawConfig {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".into(),
        ..RawConfig::default()
    }
}

/// Sets PULSE_AUTH_USER/PULSE_AUTH_PASS.
pub fn with_env_admin(raw: &mut RawConfig, username: &str, password: &str) {
    raw.auth_user = Some(username.to_owned());
    raw.auth_pass = Some(SecretString::from(password.to_owned()));
}

/// Validates `raw` and builds (but does not run) the application, as `main` does.
pub async fn build_app(raw: RawConfig, clock: &ManualClock) -> Result<(Application, StartupReport), BuildError> {
    let site_root = raw
        .data_dir
        .parent()
        .map(|dir| dir.join("site"))
        .unwrap_or_else(|| PathBuf::from("site"));
    let config = Config::from_raw(raw).unwrap_or_else(|problems| panic!("invalid test configuration: {problems:?}"));
    Application::build(config, Arc::new(clock.clone()), site_root).await
}

/// A client like a browser without JavaScript: keeps cookies, does not follow redirects.
fn browser_client(cookies: bool) -> Client {
    Client::builder()
        .cookie_store(cookies)
        .redirect(redirect::Policy::none())
        // No idle connections: a stopped server must not keep serving this client.
        .pool_max_idle_per_host(0)
        .build()
        .expect("build the HTTP client")
}

struct Running {
    port: u16,
    core: Arc<Core>,
    shutdown: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<()>>,
}

pub struct TestApp {
    pub client: Client,
    pub clock: ManualClock,
    raw: RawConfig,
    running: Option<Running>,
    // Dropped last: removes the data directory.
    _temp: TempDir,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// A server whose administrator already exists (created from the environment).
pub async fn spawn_app_with_admin() -> TestApp {
    spawn_app_with(|raw| with_env_admin(raw, ADMIN_USER, ADMIN_PASS)).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut RawConfig)) -> TestApp {
    let temp = tempfile::tempdir().expect("create a temporary directory");
    // A directory Pulse creates itself, so its permissions are Pulse's doing.
    let mut raw = raw_config(&temp.path().join("data"));
    configure(&mut raw);
    let mut app = TestApp {
        client: browser_client(true),
        clock: ManualClock::new(OffsetDateTime::now_utc()),
        raw,
        running: None,
        _temp: temp,
    };
    app.start().await;
    app
}

impl TestApp {
    async fn start(&mut self) {
        let (application, _report) = build_app(self.raw.clone(), &self.clock)
            .await
            .expect("build the application");
        let port = application.local_addr().expect("the listener has an address").port();
        let core = application.core();
        let (shutdown, stop) = oneshot::channel::<()>();
        let handle = tokio::spawn(application.run_until(async move {
            let _ = stop.await;
        }));
        self.running = Some(Running {
            port,
            core,
            shutdown,
            handle,
        });
    }

    /// Stops the server, finishing requests in flight, and waits until it has stopped.
    pub async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            let _ = running.shutdown.send(());
            tokio::time::timeout(Duration::from_secs(10), running.handle)
                .await
                .expect("the server stops within 10 s")
                .expect("the server task did not panic")
                .expect("the server stopped cleanly");
        }
    }

    /// Stops the server and starts a new one on the same data directory (and clock).
    pub async fn restart(&mut self) {
        self.restart_with(|_| {}).await;
    }

    /// Like `restart`, with changed settings (e.g. PULSE_AUTH_PASS added or removed).
    pub async fn restart_with(&mut self, configure: impl FnOnce(&mut RawConfig)) {
        self.stop().await;
        configure(&mut self.raw);
        self.start().await;
    }

    fn running(&self) -> &Running {
        self.running.as_ref().expect("the server is running")
    }

    pub fn port(&self) -> u16 {
        self.running().port
    }

    /// The server's own origin, e.g. `http://127.0.0.1:41234`.
    pub fn address(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address())
    }

    pub fn core(&self) -> Arc<Core> {
        self.running().core.clone()
    }

    pub fn data_dir(&self) -> &Path {
        &self.raw.data_dir
    }

    /// The one-time token in `<data>/.setup-token`.
    pub fn setup_token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join(".setup-token"))
            .expect("read the setup token file")
            .trim()
            .to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Result<Response> {
        self.client.get(self.url(path)).send().await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Result<Response> {
        self.client.post(self.url(path)).json(body).send().await
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Result<Response> {
        self.client.post(self.url(path)).form(fields).send().await
    }

    /// A form post as the hydrated page sends it: the answer as JSON.
    pub async fn post_form_for_json(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Result<Response> {
        self.client
            .post(self.url(path))
            .header(header::ACCEPT, "application/json")
            .form(fields)
            .send()
            .await
    }

    /// `POST /api/login` without "remember me".
    pub async fn login(&self, username: &str, password: &str) -> reqwest::Result<Response> {
        self.post_json(
            "/api/login",
            &json!({ "username": username, "password": password, "rememberMe": false }),
        )
        .await
    }

    /// Signs in as the environment's administrator and returns the session cookie's value.
    pub async fn login_as_admin(&self) -> Result<String, Box<dyn std::error::Error>> {
        let response = self.login(ADMIN_USER, ADMIN_PASS).await?;
        assert_eq!(response.status(), 200, "signing in as the administrator");
        Ok(session_cookie_value(&response).ok_or("no session cookie after signing in")?)
    }

    /// Sends five wrong passwords for the administrator; the last one locks the account.
    pub async fn lock_out_admin(&self) -> TestResult {
        for attempt in 1..=5 {
            let response = self.login(ADMIN_USER, "not the password at all").await?;
            let expected = if attempt < 5 { 401 } else { 423 };
            assert_eq!(response.status(), expected, "failed attempt {attempt}");
        }
        Ok(())
    }

    /// `GET /api/security/status` with this app's cookie jar.
    pub async fn status(&self) -> reqwest::Result<Value> {
        self.get("/api/security/status").await?.json().await
    }

    /// `GET /api/security/status` from a fresh client presenting only this session cookie value.
    pub async fn status_with_cookie(&self, session_id: &str) -> reqwest::Result<Value> {
        browser_client(false)
            .get(self.url("/api/security/status"))
            .header(header::COOKIE, format!("{SESSION_COOKIE_NAME}={session_id}"))
            .send()
            .await?
            .json()
            .await
    }

    /// Whether the cookie jar's session is signed in.
    pub async fn is_authenticated(&self) -> reqwest::Result<bool> {
        Ok(self.status().await?["authenticated"] == true)
    }
}

/// The `Set-Cookie` header that sets the session cookie, when the response has one.
pub fn session_set_cookie(response: &Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{SESSION_COOKIE_NAME}=")))
        .map(str::to_owned)
}

pub fn session_cookie_value(response: &Response) -> Option<String> {
    let set_cookie = session_set_cookie(response)?;
    let pair = set_cookie.split(';').next()?;
    pair.split_once('=')
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

/// A cookie attribute's value (`Max-Age`, `SameSite`, ...), matched case-insensitively.
pub fn cookie_attribute(set_cookie: &str, name: &str) -> Option<String> {
    set_cookie.split(';').skip(1).map(str::trim).find_map(|attribute| {
        let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
        key.eq_ignore_ascii_case(name).then(|| value.to_owned())
    })
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub fn header_text(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
