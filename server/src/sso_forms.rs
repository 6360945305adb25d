//! `POST /settings/security/sso`: the form of Settings › Security › Single sign-on (OIDC).
//! One handler for both ways the page posts: a plain form post (no JavaScript) is answered with
//! 303 back to the page, the result kept in the session for the next render; the hydrated page
//! sends `Accept: application/json` and gets the same result as JSON with a fitting status.
//! The role is checked here; the work is done by `pulse_core::sso_admin`.
use axum::{
    extract::{rejection::FormRejection, State},
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    Extension, Form, Json,
};
use pulse_app::{
    api::SsoReply,
    ssr::{field_messages, put_sso_flash, report_from, screen_from},
};
use pulse_core::{
    secrecy::SecretString,
    session,
    sso_admin::{self, SaveError, SsoInput},
};
use tower_sessions::Session;

use crate::{client::ClientContext, state::AppState};

const PAGE: &str = "/settings/security/sso";

/// Splits the posted pairs into the intent, the input for the core, and what to show again.
fn read_form(pairs: &[(String, String)]) -> (String, SsoInput, Vec<(String, String)>) {
    let mut intent = String::new();
    let mut input = SsoInput::default();
    let mut enabled_present = false;
    let mut enabled = false;
    let mut values = Vec::new();
    for (name, value) in pairs {
        match name.as_str() {
            "intent" => intent = value.clone(),
            "enabled_present" => enabled_present = true,
            "enabled" => enabled = matches!(value.as_str(), "true" | "on" | "1"),
            // Blank keeps the stored secret; spaces around a pasted secret are a copying slip.
            "client_secret" if !value.trim().is_empty() => {
                input.client_secret = Some(SecretString::from(value.trim().to_owned()));
            }
            "client_secret" => {}
            other if pulse_core::oidc::settings::TEXT_FIELDS.contains(&other) => {
                input.text.insert(other.to_owned(), value.clone());
                values.push((other.to_owned(), value.clone()));
            }
            _ => {}
        }
    }
    if enabled_present {
        input.enabled = Some(enabled);
        values.push(("enabled".to_owned(), enabled.to_string()));
    }
    (intent, input, values)
}

fn reply(intent: &str, outcome: &str, message: impl Into<String>) -> SsoReply {
    SsoReply {
        intent: intent.to_owned(),
        outcome: outcome.to_owned(),
        message: message.into(),
        errors: Vec::new(),
        report: None,
        values: Vec::new(),
        screen: None,
    }
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("application/json"))
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    headers: HeaderMap,
    session: Session,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Response {
    let json = wants_json(&headers);
    let user = match session::current_user(&session).await {
        Ok(Some(user)) if user.is_admin() => user,
        Ok(Some(_)) => {
            let body = reply("", "forbidden", "Only administrators can change single sign-on.");
            return if json {
                (StatusCode::FORBIDDEN, Json(body)).into_response()
            } else {
                (StatusCode::FORBIDDEN, body.message).into_response()
            };
        }
        _ => {
            return if json {
                (
                    StatusCode::UNAUTHORIZED,
                    Json(reply("", "unauthenticated", "Sign in again.")),
                )
                    .into_response()
            } else {
                Redirect::to(&format!("/login?returnTo={PAGE}")).into_response()
            };
        }
    };
    let Ok(Form(pairs)) = form else {
        let body = reply(
            "",
            "error",
            "The form could not be read. Reload the page and try again.",
        );
        return (StatusCode::BAD_REQUEST, Json(body)).into_response();
    };
    let (intent, input, values) = read_form(&pairs);
    let core = &state.core;
    let ip = client.ip_string();
    let base = crate::oidc::base_url(&state, &headers, &client);
    let typed_secret = input.client_secret.is_some();

    let (status, mut body) = match intent.as_str() {
        "save" | "clear_secret" => {
            let input = if intent == "clear_secret" {
                SsoInput {
                    clear_client_secret: true,
                    ..SsoInput::default()
                }
            } else {
                input
            };
            match sso_admin::save(core, &user.username, &ip, &input).await {
                Ok(changed) => {
                    let (outcome, message) = match (intent.as_str(), changed.is_empty()) {
                        ("clear_secret", _) => ("secret_cleared", "The stored client secret was cleared.".to_owned()),
                        (_, true) => ("unchanged", "Nothing changed.".to_owned()),
                        (_, false) => {
                            let in_force = core.oidc.active().is_some();
                            let enabled = core
                                .oidc
                                .effective_settings(&core.db)
                                .await
                                .map(|s| s.enabled)
                                .unwrap_or(false);
                            let note = if enabled && !in_force {
                                " Single sign-on is still off: see the problems listed above."
                            } else if in_force {
                                " Single sign-on uses them now."
                            } else {
                                ""
                            };
                            ("saved", format!("Saved.{note}"))
                        }
                    };
                    (StatusCode::OK, reply(&intent, outcome, message))
                }
                Err(SaveError::Invalid(errors)) => {
                    let mut body = reply(
                        &intent,
                        "invalid",
                        "Nothing was saved: correct the fields marked below.",
                    );
                    body.errors = field_messages(errors);
                    (StatusCode::UNPROCESSABLE_ENTITY, body)
                }
                Err(SaveError::Storage(err)) => {
                    tracing::error!(error = %err, "saving the single sign-on settings failed");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        reply(
                            &intent,
                            "error",
                            "Saving failed because of a server problem; nothing was changed. Check the Pulse log.",
                        ),
                    )
                }
            }
        }
        "test" => match sso_admin::test_connection(core, &user.username, &ip, &input, &base).await {
            Ok(report) => {
                let failed = report
                    .lines
                    .iter()
                    .filter(|l| l.status == pulse_core::oidc::probe::CheckStatus::Failed)
                    .count();
                let message = if report.passed() {
                    "Test connection: every check passed. Save to use these settings.".to_owned()
                } else {
                    format!("Test connection found {failed} problem(s); see the checklist below. Nothing was saved.")
                };
                let mut body = reply(&intent, "tested", message);
                body.report = Some(report_from(&report));
                (StatusCode::OK, body)
            }
            Err(SaveError::Invalid(errors)) => {
                let mut body = reply(&intent, "invalid", "Correct the fields marked below, then test again.");
                body.errors = field_messages(errors);
                (StatusCode::UNPROCESSABLE_ENTITY, body)
            }
            Err(SaveError::Storage(err)) => {
                tracing::error!(error = %err, "the connection test could not read or record settings");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    reply(
                        &intent,
                        "error",
                        "The test failed because of a server problem. Check the Pulse log.",
                    ),
                )
            }
        },
        "validate" => {
            let stored = match pulse_core::oidc::settings::load_stored(&core.db).await {
                Ok(stored) => stored,
                Err(err) => {
                    tracing::error!(error = %err, "reading the single sign-on settings failed");
                    return (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        Json(reply(&intent, "error", "Server problem.")),
                    )
                        .into_response();
                }
            };
            let mut body = reply(&intent, "validated", "");
            if let Err(errors) = sso_admin::merge(&stored, core.oidc.env(), &input, false) {
                body.errors = field_messages(errors);
            }
            (StatusCode::OK, body)
        }
        _ => (
            StatusCode::BAD_REQUEST,
            reply(&intent, "error", "Unknown action. Reload the page and try again."),
        ),
    };

    let saved = matches!(body.outcome.as_str(), "saved" | "unchanged" | "secret_cleared");
    if json {
        if saved {
            match sso_admin::view(core, &base).await {
                Ok(view) => body.screen = Some(Box::new(screen_from(view, None))),
                Err(err) => tracing::warn!(error = %err, "could not read the settings back after saving"),
            }
        }
        return (status, Json(body)).into_response();
    }
    if !saved {
        // Show what was typed again (never the secret), next to the errors or the report.
        body.values = values;
        if typed_secret {
            body.message
                .push_str(" The client secret you typed was not kept: type it again before saving.");
        }
    }
    put_sso_flash(&session, &body).await;
    Redirect::to(&format!("{PAGE}?result={}", body.outcome)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page (WebAssembly, no core) and the core name the same fields in the same order.
    #[test]
    fn the_page_and_the_core_agree_on_the_fields() {
        assert_eq!(pulse_app::api::SSO_TEXT_FIELDS, pulse_core::oidc::settings::TEXT_FIELDS);
    }

    #[test]
    fn a_blank_secret_keeps_the_stored_one_and_unsent_fields_stay_unsent() {
        let pairs = |list: &[(&str, &str)]| -> Vec<(String, String)> {
            list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
        };
        let (intent, input, values) = read_form(&pairs(&[
            ("intent", "save"),
            ("client_secret", "  "),
            ("client_id", "pulse"),
            ("unknown", "x"),
        ]));
        assert_eq!(intent, "save");
        assert!(input.client_secret.is_none());
        assert_eq!(
            input.enabled, None,
            "no enabled_present: the checkbox was not on the form"
        );
        assert_eq!(input.text.keys().collect::<Vec<_>>(), ["client_id"]);
        assert_eq!(values, [("client_id".to_owned(), "pulse".to_owned())]);
        let (_, input, _) = read_form(&pairs(&[("enabled_present", "1")]));
        assert_eq!(input.enabled, Some(false), "an unticked box means off");
    }
}
