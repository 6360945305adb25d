//! Form posts of Settings › Security › Authentication. Each checks the session and role itself,
//! calls the core, and answers 303 back to the page with a result or error code, so the screen
//! works without JavaScript.
use axum::{
    extract::{rejection::FormRejection, State},
    response::Redirect,
    Extension, Form,
};
use pulse_core::{
    auth::{self, ChangePasswordError},
    secrecy::SecretString,
    session::{self, SessionUser},
    store::lockout,
};
use serde::Deserialize;
use tower_sessions::Session;

use crate::{client::ClientContext, state::AppState};

const PAGE: &str = "/settings/security/authentication";

fn back(code: &str) -> Redirect {
    Redirect::to(&format!("{PAGE}?{code}"))
}

async fn signed_in(session: &Session) -> Option<SessionUser> {
    session::current_user(session).await.ok().flatten()
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
    #[serde(default)]
    confirm: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    session: Session,
    form: Result<Form<PasswordForm>, FormRejection>,
) -> Redirect {
    let Some(user) = signed_in(&session).await else {
        return Redirect::to(&format!("/login?returnTo={PAGE}"));
    };
    let (Ok(Form(form)), Ok(Some(binding))) = (form, session::binding(&session).await) else {
        return back("error=invalid_request");
    };
    let outcome = auth::change_password(
        &state.core,
        user.user_id,
        &binding,
        &SecretString::from(form.current),
        &SecretString::from(form.new),
        &SecretString::from(form.confirm),
        &client.ip_string(),
    )
    .await;
    match outcome {
        Ok(()) => back("result=password_changed"),
        Err(ChangePasswordError::WrongCurrent) => back("error=wrong_current_password"),
        Err(ChangePasswordError::Rejected(_)) => back("error=password_short"),
        Err(ChangePasswordError::Mismatch) => back("error=password_mismatch"),
        Err(ChangePasswordError::NotLocal) => back("error=not_local"),
        Err(ChangePasswordError::Storage(err)) => {
            tracing::error!(error = %err, "changing a password failed");
            back("error=internal")
        }
    }
}

#[derive(Deserialize)]
pub struct HideForm {
    #[serde(default)]
    hide: Option<String>,
}

pub async fn set_hide_local_login(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    session: Session,
    form: Result<Form<HideForm>, FormRejection>,
) -> Redirect {
    let core = &state.core;
    match signed_in(&session).await {
        Some(user) if user.is_admin() => {
            let Ok(Form(form)) = form else {
                return back("error=invalid_request");
            };
            let hide = form.hide.as_deref() == Some("true");
            if core.config.hide_local_login.is_some() {
                return back("error=hide_env_managed");
            }
            // Hiding the form while SSO does not work would lock everyone out: it must be on and
            // have passed Test connection with the settings in force.
            if hide {
                match pulse_core::sso_admin::verified_at(core).await {
                    Ok(Some(_)) => {}
                    Ok(None) => return back("error=hide_requires_sso"),
                    Err(err) => {
                        tracing::error!(error = %err, "checking the single sign-on test record failed");
                        return back("error=internal");
                    }
                }
            }
            if let Err(err) = core.store_hide_local_login(hide).await {
                tracing::error!(error = %err, "saving the hide-local-login toggle failed");
                return back("error=internal");
            }
            let what = if hide {
                "local login form hidden"
            } else {
                "local login form shown"
            };
            auth::record_settings_change(core, &user.username, &client.ip_string(), what).await;
            back("result=saved")
        }
        Some(_) => back("error=forbidden"),
        None => Redirect::to(&format!("/login?returnTo={PAGE}")),
    }
}

#[derive(Deserialize)]
pub struct UnlockForm {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    subject: String,
}

pub async fn unlock(
    State(state): State<AppState>,
    Extension(client): Extension<ClientContext>,
    session: Session,
    form: Result<Form<UnlockForm>, FormRejection>,
) -> Redirect {
    let core = &state.core;
    match signed_in(&session).await {
        Some(user) if user.is_admin() => {
            let Some((scope, subject)) = form
                .ok()
                .and_then(|Form(f)| lockout::Scope::parse(&f.scope).map(|s| (s, f.subject)))
            else {
                return back("error=invalid_request");
            };
            match lockout::clear(&core.db, scope, &subject).await {
                Ok(_) => {
                    let what = format!("unlocked {} {subject}", scope.name());
                    auth::record_settings_change(core, &user.username, &client.ip_string(), &what).await;
                    back("result=unlocked")
                }
                Err(err) => {
                    tracing::error!(error = %err, "unlocking failed");
                    back("error=internal")
                }
            }
        }
        Some(_) => back("error=forbidden"),
        None => Redirect::to(&format!("/login?returnTo={PAGE}")),
    }
}
