//! Plain HTML form posts, so sign-in, setup and sign-out work without JavaScript. Each answers
//! with a 303 redirect: to the destination on success, back to the page with an error code if not.
use axum::{
    extract::{rejection::FormRejection, State},
    response::Redirect,
    Extension, Form,
};
use pulse_core::{
    return_to::return_to_or_home,
    secrecy::SecretString,
    setup::{self, SetupError, SetupForm},
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::{
    api::{sign_in_locally, sign_out},
    client::ClientContext,
    state::AppState,
};

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "rememberMe")]
    remember_me: Option<String>,
    #[serde(default, rename = "returnTo")]
    return_to: Option<String>,
    /// Set when the form was reached through `?show_local=true`, so a retry keeps the form visible.
    #[serde(default)]
    show_local: Option<String>,
}

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

pub async fn login(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    session: Session,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Redirect {
    let Ok(Form(form)) = form else {
        return Redirect::to("/login?error=invalid_request");
    };
    let remember = form.remember_me.as_deref().is_some_and(|v| v == "true" || v == "on");
    let destination = return_to_or_home(form.return_to.as_deref());
    match sign_in_locally(
        &state,
        &session,
        &client,
        &form.username,
        SecretString::from(form.password),
        remember,
    )
    .await
    {
        Ok(()) => Redirect::to(&destination),
        Err(err) => {
            let body = err.body();
            let mut url = format!("/login?error={}", encode(&body.error));
            if let Some(remaining) = body.remaining {
                url.push_str(&format!("&remaining={remaining}"));
            }
            if let Some(seconds) = body.retry_after {
                url.push_str(&format!("&retry_after={seconds}"));
            }
            if destination != "/" {
                url.push_str(&format!("&returnTo={}", encode(&destination)));
            }
            if form.show_local.as_deref() == Some("true") {
                url.push_str("&show_local=true");
            }
            Redirect::to(&url)
        }
    }
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    headers: axum::http::HeaderMap,
    session: Session,
) -> Redirect {
    let base = crate::oidc::base_url(&state, &headers, &client);
    match sign_out(&state, &session, &client, &base).await {
        Ok(next) => Redirect::to(&next),
        Err(_) => Redirect::to("/login"),
    }
}

#[derive(Deserialize)]
pub struct SetupFormBody {
    #[serde(default)]
    token: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirm: String,
}

pub async fn setup(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    session: Session,
    form: Result<Form<SetupFormBody>, FormRejection>,
) -> Redirect {
    let Ok(Form(body)) = form else {
        return Redirect::to("/setup?error=internal");
    };
    let core = &state.core;
    let form = SetupForm {
        token: body.token.clone(),
        username: body.username.clone(),
        password: SecretString::from(body.password),
        confirm: SecretString::from(body.confirm),
    };
    let now = core.clock.now();
    match setup::complete_setup(&core.db, &core.passwords, &core.config.data_dir, &form, now).await {
        Ok(user) => {
            tracing::info!(user = %user.username, ip = %client.ip, "first administrator created");
            // The person who just proved they hold the token is signed straight in.
            match pulse_core::auth::start_local_session(core, &session, &user, false, client.info()).await {
                Ok(()) => Redirect::to("/"),
                Err(err) => {
                    tracing::error!(error = %err, "could not start a session after setup");
                    Redirect::to("/login?setup=done")
                }
            }
        }
        Err(err) => {
            let code = match &err {
                SetupError::AlreadyDone => return Redirect::to("/login"),
                SetupError::BadToken => "bad_token",
                SetupError::Invalid(field) => match field.field {
                    "username" => "username_invalid",
                    "password" => "password_short",
                    _ => "password_mismatch",
                },
                SetupError::Storage(_) | SetupError::Hashing(_) => {
                    tracing::error!(error = %err, "setup failed");
                    "internal"
                }
            };
            tracing::warn!(ip = %client.ip, code, "setup attempt refused");
            Redirect::to(&format!(
                "/setup?error={code}&token={}&username={}",
                encode(&body.token),
                encode(&body.username)
            ))
        }
    }
}
