//! Test connection: what the SSO screen runs against the values an admin entered (not yet saved).
//! Each step becomes one line of a checklist that says what was found and how to fix a failure.
use std::time::Duration;

use openidconnect::{
    core::{CoreErrorResponseType, CoreJsonWebKeyType, CoreJwsSigningAlgorithm},
    AuthorizationCode, JsonWebKey, RequestTokenError,
};
use secrecy::SecretString;
use time::OffsetDateTime;

use super::{
    flow::{self, ActiveConfig},
    provider::{self, Discovered},
    settings::OidcSettings,
};

/// How long the whole test may take.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Passed,
    Failed,
    Warning,
    Skipped,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Passed => "passed",
            CheckStatus::Failed => "failed",
            CheckStatus::Warning => "warning",
            CheckStatus::Skipped => "skipped",
        }
    }
}

/// One line of the checklist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub id: &'static str,
    pub label: &'static str,
    pub status: CheckStatus,
    pub detail: String,
    pub fix: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionReport {
    pub lines: Vec<CheckLine>,
}

impl ConnectionReport {
    /// Every check ran and none failed (warnings are allowed).
    pub fn passed(&self) -> bool {
        !self.lines.is_empty()
            && self
                .lines
                .iter()
                .all(|line| matches!(line.status, CheckStatus::Passed | CheckStatus::Warning))
    }

    fn push(&mut self, id: &'static str, label: &'static str, status: CheckStatus, detail: impl Into<String>) {
        self.lines.push(CheckLine {
            id,
            label,
            status,
            detail: detail.into(),
            fix: None,
        });
    }

    fn fail(&mut self, id: &'static str, label: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.lines.push(CheckLine {
            id,
            label,
            status: CheckStatus::Failed,
            detail: detail.into(),
            fix: Some(fix.into()),
        });
    }
}

/// What is tested: the candidate settings, the secret that would be used, and the redirect URI
/// that would be sent.
#[derive(Debug)]
pub struct Target<'a> {
    pub settings: &'a OidcSettings,
    pub client_secret: Option<&'a SecretString>,
    pub redirect_uri: &'a str,
}

const DISCOVERY: &str = "Discovery document";
const ISSUER: &str = "Issuer matches exactly";
const JWKS: &str = "Signing keys (JWKS)";
const RS256: &str = "RS256-signed ID tokens";
const CLIENT: &str = "Client ID and secret";
const END_SESSION: &str = "Sign-out at the provider";

/// Runs every check, giving up after `limit` (the lines found so far are kept).
pub async fn test_connection(http: &reqwest::Client, target: &Target<'_>, limit: Duration) -> ConnectionReport {
    let mut report = ConnectionReport::default();
    let finished = tokio::time::timeout(limit, run(http, target, &mut report))
        .await
        .is_ok();
    if !finished {
        report.fail(
            "timeout",
            "Answered in time",
            format!(
                "The provider did not answer within {} seconds, so the test stopped.",
                limit.as_secs_f32()
            ),
            "Check that this server can reach the provider (DNS, firewall, proxy) and that the issuer URL points at it.",
        );
    }
    report
}

async fn run(http: &reqwest::Client, target: &Target<'_>, report: &mut ConnectionReport) {
    let issuer = target.settings.issuer_url.as_str();
    let url = provider::discovery_url(issuer);
    let (metadata, end_session_endpoint) = match provider::fetch_discovery_document(http, issuer).await {
        Ok(found) => {
            report.push("discovery", DISCOVERY, CheckStatus::Passed, format!("Fetched {url}."));
            found
        }
        Err(failure) => {
            report.fail(
                "discovery",
                DISCOVERY,
                failure.cause,
                "Check the issuer URL and that this server can reach it. For authentik it looks like https://authentik.company/application/o/<application-slug>/; for a provider with a private CA, set the CA bundle under Advanced.",
            );
            for (id, label) in [("issuer", ISSUER), ("jwks", JWKS), ("rs256", RS256), ("client", CLIENT)] {
                report.push(id, label, CheckStatus::Skipped, "Needs the discovery document.");
            }
            return;
        }
    };

    let discovered_issuer = metadata.issuer().as_str().to_owned();
    if discovered_issuer == issuer {
        report.push(
            "issuer",
            ISSUER,
            CheckStatus::Passed,
            format!("The provider calls itself {issuer}."),
        );
    } else {
        report.fail(
            "issuer",
            ISSUER,
            provider::issuer_mismatch_message(issuer, &discovered_issuer),
            format!("Set the issuer URL to {discovered_issuer}"),
        );
    }

    match provider::fetch_jwks(http, &metadata).await {
        Ok(jwks) => {
            let rsa = jwks
                .keys()
                .iter()
                .filter(|key| *key.key_type() == CoreJsonWebKeyType::RSA)
                .count();
            let total = jwks.keys().len();
            if rsa > 0 {
                report.push(
                    "jwks",
                    JWKS,
                    CheckStatus::Passed,
                    format!(
                        "{total} key(s) at {}, {rsa} of them RSA.",
                        metadata.jwks_uri().as_str()
                    ),
                );
            } else {
                report.fail(
                    "jwks",
                    JWKS,
                    format!(
                        "{total} key(s) at {}, none of them RSA.",
                        metadata.jwks_uri().as_str()
                    ),
                    "Give the provider an RSA signing key (in authentik: choose a certificate as the provider's Signing Key).",
                );
            }
        }
        Err(failure) => report.fail(
            "jwks",
            JWKS,
            failure.cause,
            "The discovery document names a jwks_uri this server cannot fetch; check the provider's public URL settings.",
        ),
    }

    let algorithms = metadata.id_token_signing_alg_values_supported();
    if algorithms.contains(&CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256) {
        report.push(
            "rs256",
            RS256,
            CheckStatus::Passed,
            "The provider signs ID tokens with RS256.",
        );
    } else {
        let offered: Vec<String> = algorithms
            .iter()
            .map(|alg| {
                serde_json::to_value(alg)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        report.fail(
            "rs256",
            RS256,
            format!("The provider offers only: {}.", offered.join(", ")),
            "Pulse accepts RS256-signed ID tokens only. Select an RSA signing key (RS256) for this client at the provider.",
        );
    }

    check_client(http, target, metadata.clone(), end_session_endpoint.clone(), report).await;

    if !target.settings.logout_url.is_empty() {
        report.push(
            "end_session",
            END_SESSION,
            CheckStatus::Passed,
            "Signing out sends the browser to the configured end session URL.",
        );
    } else if end_session_endpoint.is_some() {
        report.push(
            "end_session",
            END_SESSION,
            CheckStatus::Passed,
            "The provider offers an end_session_endpoint: signing out of Pulse also ends the provider session.",
        );
    } else {
        report.lines.push(CheckLine {
            id: "end_session",
            label: END_SESSION,
            status: CheckStatus::Warning,
            detail: "The provider's discovery document has no end_session_endpoint: signing out of Pulse will not end the provider session.".into(),
            fix: Some("If your provider has a logout URL, enter it as the End session URL.".into()),
        });
    }
}

/// Sends a deliberately invalid authorization code with the client's credentials: `invalid_grant`
/// means the provider accepted the credentials and refused only the code.
async fn check_client(
    http: &reqwest::Client,
    target: &Target<'_>,
    metadata: openidconnect::core::CoreProviderMetadata,
    end_session_endpoint: Option<String>,
    report: &mut ConnectionReport,
) {
    let discovered = Discovered {
        metadata,
        end_session_endpoint,
        fetched_at: OffsetDateTime::UNIX_EPOCH,
    };
    let config = ActiveConfig {
        settings: target.settings.clone(),
        client_secret: target.client_secret.cloned(),
    };
    let client = match flow::client(&discovered, &config, target.redirect_uri) {
        Ok(client) => client,
        Err(failure) => {
            report.fail("client", CLIENT, failure.cause, "Fix the redirect URL.");
            return;
        }
    };
    let code = format!(
        "pulse-connection-test-{}",
        openidconnect::CsrfToken::new_random().secret()
    );
    let request = match client.exchange_code(AuthorizationCode::new(code)) {
        Ok(request) => request,
        Err(err) => {
            report.fail(
                "client",
                CLIENT,
                format!("The discovery document names no token endpoint: {err}."),
                "Check that the issuer URL belongs to an OpenID Connect provider.",
            );
            return;
        }
    };
    let no_secret = target.client_secret.is_none();
    match request.request_async(http).await {
        Err(RequestTokenError::ServerResponse(body)) => match body.error() {
            CoreErrorResponseType::InvalidGrant => report.push(
                "client",
                CLIENT,
                CheckStatus::Passed,
                "The token endpoint accepted the client credentials (it refused only the test's deliberately invalid code).",
            ),
            CoreErrorResponseType::InvalidClient => report.fail(
                "client",
                CLIENT,
                if no_secret {
                    "The provider rejected the client (invalid_client), and no client secret is set.".to_owned()
                } else {
                    "The provider rejected the client ID or secret (invalid_client).".to_owned()
                },
                "Copy the client ID and secret again from the provider. The client must be confidential and accept client_secret_basic.",
            ),
            CoreErrorResponseType::UnauthorizedClient => report.fail(
                "client",
                CLIENT,
                "The provider does not let this client use the authorization code grant (unauthorized_client).",
                "Allow the authorization code grant for this client at the provider.",
            ),
            other => report.lines.push(CheckLine {
                id: "client",
                label: CLIENT,
                status: CheckStatus::Warning,
                detail: format!(
                    "The token endpoint answered {}{}; Pulse cannot tell from that whether the credentials are right.",
                    other.as_ref(),
                    body.error_description().map(|d| format!(" ({d})")).unwrap_or_default()
                ),
                fix: Some("Sign in once with single sign-on to confirm.".into()),
            }),
        },
        Err(RequestTokenError::Request(err)) => report.fail(
            "client",
            CLIENT,
            format!("The token endpoint could not be reached: {}", provider::error_chain(&err)),
            "Check that this server can reach the provider's token endpoint.",
        ),
        Err(err) => report.lines.push(CheckLine {
            id: "client",
            label: CLIENT,
            status: CheckStatus::Warning,
            detail: format!("The token endpoint's answer was not understood: {err}"),
            fix: Some("Sign in once with single sign-on to confirm.".into()),
        }),
        Ok(_) => report.lines.push(CheckLine {
            id: "client",
            label: CLIENT,
            status: CheckStatus::Warning,
            detail: "The token endpoint accepted an invalid code; that provider is not behaving as expected.".into(),
            fix: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_provider_that_never_answers_fails_the_test_at_the_time_limit() -> Result<(), Box<dyn std::error::Error>>
    {
        // Accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let settings = OidcSettings {
            issuer_url: format!("http://{address}"),
            client_id: "pulse".into(),
            ..OidcSettings::default()
        };
        let target = Target {
            settings: &settings,
            client_secret: None,
            redirect_uri: "http://localhost/api/oidc/callback",
        };
        let http = provider::http_client(None)?;
        let report = test_connection(&http, &target, Duration::from_millis(300)).await;
        holder.abort();
        assert!(!report.passed());
        let last = report.lines.last().ok_or("no lines")?;
        assert_eq!((last.id, last.status), ("timeout", CheckStatus::Failed));
        Ok(())
    }

    #[test]
    fn warnings_pass_and_failures_or_no_checks_do_not() {
        let line = |status| CheckLine {
            id: "x",
            label: "x",
            status,
            detail: String::new(),
            fix: None,
        };
        let report = |statuses: &[CheckStatus]| ConnectionReport {
            lines: statuses.iter().map(|s| line(*s)).collect(),
        };
        assert!(report(&[CheckStatus::Passed, CheckStatus::Warning]).passed());
        assert!(!report(&[CheckStatus::Passed, CheckStatus::Failed]).passed());
        assert!(!report(&[CheckStatus::Passed, CheckStatus::Skipped]).passed());
        assert!(!report(&[]).passed());
    }
}
