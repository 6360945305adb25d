//! A browser without JavaScript: its own HTTP connections and its own cookie jar (Pulse's session
//! cookie), redirects followed by hand so each step can be checked and timed.
use std::time::{Duration, Instant};

use reqwest::{header, redirect, Client, StatusCode};
use serde_json::Value;

use crate::{op::TestOp, pulse::SESSION_COOKIE};

pub type Failure = String;

/// The timings of one completed SSO sign-in.
#[derive(Debug, Clone, Copy)]
pub struct SignIn {
    pub total: Duration,
    /// Client-side: the callback request sent → Pulse's 303 received.
    pub callback: Duration,
    /// Inside the provider's token endpoint for this sign-in's code.
    pub op_token: Duration,
}

impl SignIn {
    /// The callback's cost to Pulse: its latency minus the provider's token-endpoint time.
    pub fn callback_net(&self) -> Duration {
        self.callback.saturating_sub(self.op_token)
    }
}

pub struct Browser {
    http: Client,
    base: String,
    /// The jar: Pulse's session cookie, the only cookie in play (the provider sets none).
    cookie: Option<String>,
}

impl Browser {
    pub fn new(base: &str) -> Result<Browser, Failure> {
        let http = Client::builder()
            .redirect(redirect::Policy::none())
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()
            .map_err(|err| format!("HTTP client: {err}"))?;
        Ok(Browser {
            http,
            base: base.to_owned(),
            cookie: None,
        })
    }

    /// A new browser session: empties the jar.
    pub fn clear_cookies(&mut self) {
        self.cookie = None;
    }

    pub fn cookie_header(&self) -> Option<String> {
        self.cookie.as_ref().map(|value| format!("{SESSION_COOKIE}={value}"))
    }

    fn remember(&mut self, response: &reqwest::Response) {
        self.cookie = adopt_cookies(self.cookie.take(), response.headers());
    }

    async fn get(&mut self, url: &str) -> Result<reqwest::Response, Failure> {
        let mut request = self.http.get(url);
        if url.starts_with(&self.base) {
            if let Some(cookie) = self.cookie_header() {
                request = request.header(header::COOKIE, cookie);
            }
        }
        let response = request
            .send()
            .await
            .map_err(|err| format!("GET {}: {}", short(url), err.without_url()))?;
        if url.starts_with(&self.base) {
            self.remember(&response);
        }
        Ok(response)
    }

    /// `GET /api/oidc/login` → provider's authorize (approved at once) → Pulse's callback → `/`.
    pub async fn sign_in(&mut self, op: &TestOp) -> Result<SignIn, Failure> {
        let started = Instant::now();
        let begin = self.get(&format!("{}/api/oidc/login?returnTo=%2F", self.base)).await?;
        let authorize = redirect_target(&begin, "Pulse's SSO login")?;
        if !authorize.starts_with(&format!("{}/authorize?", op.issuer())) {
            return Err(format!("not sent to the provider: {}", short(&authorize)));
        }
        let approved = self.get(&authorize).await?;
        let callback = redirect_target(&approved, "the provider's authorize")?;
        if !callback.starts_with(&format!("{}/api/oidc/callback?", self.base)) {
            return Err(format!("the provider sent the browser elsewhere: {}", short(&callback)));
        }
        let code = url::Url::parse(&callback)
            .ok()
            .and_then(|url| {
                url.query_pairs()
                    .find(|(key, _)| key == "code")
                    .map(|(_, value)| value.into_owned())
            })
            .ok_or("no code in the callback")?;
        let callback_sent = Instant::now();
        let finished = self.get(&callback).await?;
        let callback_time = callback_sent.elapsed();
        if finished.status() != StatusCode::SEE_OTHER {
            return Err(format!("callback answered {}", finished.status()));
        }
        let landing = redirect_target(&finished, "the callback")?;
        if landing != "/" {
            return Err(format!("callback refused the sign-in: {}", short(&landing)));
        }
        if self.cookie.is_none() {
            return Err("no session cookie after the callback".into());
        }
        let op_token = op
            .take_code_grant_time(&code)
            .ok_or("the provider saw no token request for this code")?;
        Ok(SignIn {
            total: started.elapsed(),
            callback: callback_time,
            op_token,
        })
    }

    /// `POST /api/login` with the administrator's password (done once: sign-in posts are rate limited).
    pub async fn sign_in_locally(&mut self, username: &str, password: &str) -> Result<(), Failure> {
        let response = self
            .http
            .post(format!("{}/api/login", self.base))
            .json(&serde_json::json!({ "username": username, "password": password }))
            .send()
            .await
            .map_err(|err| format!("POST /api/login: {}", err.without_url()))?;
        self.remember(&response);
        if response.status() != StatusCode::OK {
            let status = response.status();
            return Err(format!(
                "POST /api/login answered {status}: {}",
                response.text().await.unwrap_or_default()
            ));
        }
        Ok(())
    }

    /// `GET /api/security/status`: whether Pulse still sees this browser signed in.
    pub async fn signed_in(&mut self) -> Result<bool, Failure> {
        let response = self.get(&format!("{}/api/security/status", self.base)).await?;
        if response.status() != StatusCode::OK {
            return Err(format!("status answered {}", response.status()));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|err| format!("status is not JSON: {err}"))?;
        Ok(body["authenticated"] == true)
    }

    /// A copy sharing the connection pool and holding the same cookie, for concurrent requests
    /// of one browser.
    pub fn tab(&self) -> Browser {
        Browser {
            http: self.http.clone(),
            base: self.base.clone(),
            cookie: self.cookie.clone(),
        }
    }

    pub fn set_cookie_value(&mut self, cookie: Option<String>) {
        self.cookie = cookie;
    }

    pub fn cookie_value(&self) -> Option<String> {
        self.cookie.clone()
    }
}

/// Applies `Set-Cookie` headers for Pulse's session cookie to the jar's current value.
fn adopt_cookies(mut current: Option<String>, headers: &header::HeaderMap) -> Option<String> {
    for set in headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        let mut parts = set.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|pair| pair.split_once('=')) else {
            continue;
        };
        if name != SESSION_COOKIE {
            continue;
        }
        let removed = value.is_empty()
            || parts.any(|attr| {
                attr.eq_ignore_ascii_case("max-age=0")
                    || attr.to_ascii_lowercase().starts_with("expires=thu, 01 jan 1970")
            });
        current = if removed { None } else { Some(value.to_owned()) };
    }
    current
}

fn redirect_target(response: &reqwest::Response, what: &str) -> Result<String, Failure> {
    if !response.status().is_redirection() {
        return Err(format!("{what} answered {}, not a redirect", response.status()));
    }
    response
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("{what}: redirect without Location"))
}

fn short(url: &str) -> String {
    url.chars().take(100).collect()
}
