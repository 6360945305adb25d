//! `/login`: SSO buttons, the local form (unless hidden), and the messages a sign-in can end with.
use leptos::{ev::SubmitEvent, html, prelude::*};
use leptos_router::hooks::use_query_map;

use crate::{
    api::{get_login_options, LoginOptions, LoginRequest},
    browser::{self, LoginReply},
    components::{login_error_message, oidc_error_message, AuthFrame, Banner, Tone},
};

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let param = move |name: &str| query.with_untracked(|q| q.get(name));
    let options = Resource::new(|| (), |_| get_login_options());

    // Messages carried by the URL: results of a no-JavaScript form post, sign-out, SSO failures.
    let initial_error = param("error").map(|code| {
        let number = |name: &str| param(name).and_then(|v| v.parse::<i64>().ok());
        login_error_message(&code, number("remaining"), number("retry_after"))
    });
    let sso_error = (param("oidc").as_deref() == Some("error")).then(|| {
        let code = param("oidc_error").unwrap_or_default();
        let mut message = oidc_error_message(&code).to_owned();
        if let Some(description) = param("oidc_error_description").filter(|_| code == "idp_error") {
            // Shown as text (escaped by the renderer), never as markup.
            message.push_str(&format!(" The provider said: \u{201c}{description}\u{201d}"));
        }
        message
    });
    let sso_error =
        sso_error.or_else(|| param("session_ended").map(|reason| session_ended_message(&reason).to_owned()));
    let notice = if param("logged_out").is_some() {
        Some("You have been signed out.")
    } else if param("setup").as_deref() == Some("done") {
        Some("Your administrator account is ready. Sign in to continue.")
    } else {
        None
    };
    let show_local_requested = param("show_local").as_deref() == Some("true");
    let return_to = param("returnTo").unwrap_or_default();

    view! {
        <AuthFrame title="Welcome to Pulse" subtitle="Enter your credentials to continue">
            {notice.map(|text| view! { <Banner tone=Tone::Success message=text/> })}
            {sso_error.map(|text| view! { <Banner tone=Tone::Error message=text/> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new({
                    let return_to = return_to.clone();
                    let initial_error = initial_error.clone();
                    async move {
                        match options.await {
                            Ok(options) => view! {
                                <LoginChoices
                                    options=options
                                    show_local_requested=show_local_requested
                                    return_to=return_to
                                    initial_error=initial_error
                                />
                            }.into_any(),
                            Err(_) => view! {
                                <Banner tone=Tone::Error message="Pulse could not load its sign-in options. Reload the page; if this persists, check the Pulse log."/>
                            }.into_any(),
                        }
                    }
                })}
            </Suspense>
        </AuthFrame>
    }
}

/// Why a session ended before its time, as carried by `session_ended=<reason>`.
fn session_ended_message(reason: &str) -> &'static str {
    match reason {
        "idp_refused" | "idp_logout" => "Your single sign-on session ended at the identity provider. Sign in again.",
        "idp_unreachable" => "Your session expired while the identity provider could not be reached. Sign in again.",
        "revoked" => "Your session was ended from the Sessions screen. Sign in again.",
        _ => "Your session ended. Sign in again.",
    }
}

#[component]
fn LoginChoices(
    options: LoginOptions,
    show_local_requested: bool,
    return_to: String,
    initial_error: Option<String>,
) -> impl IntoView {
    let show_form = !options.hide_local_login || show_local_requested;
    let has_sso = !options.sso_providers.is_empty();
    let buttons = options
        .sso_providers
        .into_iter()
        .map(|provider| {
            let href = if return_to.is_empty() {
                provider.login_url.clone()
            } else {
                format!("{}?returnTo={}", provider.login_url, encode_component(&return_to))
            };
            view! { <a class="button button-sso" href=href rel="external">{format!("Continue with {}", provider.display_name)}</a> }
        })
        .collect_view();
    view! {
        {options.setup_required.then(|| view! {
            <Banner tone=Tone::Info message="Pulse has no administrator yet. Open the setup link printed in Pulse's log to create one."/>
        })}
        {buttons}
        {(has_sso && show_form).then(|| view! { <div class="divider"><span>"or"</span></div> })}
        {if show_form {
            view! { <LocalLoginForm return_to=return_to initial_error=initial_error show_local=show_local_requested/> }.into_any()
        } else {
            view! {
                {initial_error.map(|message| view! { <Banner tone=Tone::Error message=message/> })}
                <p class="muted small">"Local sign-in is hidden by your administrator."</p>
            }.into_any()
        }}
    }
}

#[component]
fn LocalLoginForm(return_to: String, initial_error: Option<String>, show_local: bool) -> impl IntoView {
    let error = RwSignal::new(initial_error);
    let pending = RwSignal::new(false);
    let username = NodeRef::<html::Input>::new();
    let password = NodeRef::<html::Input>::new();
    let remember = NodeRef::<html::Input>::new();
    let destination = return_to.clone();

    let on_submit = move |ev: SubmitEvent| {
        // Hydrated: sign in over the JSON API without a reload. Without JavaScript this handler
        // never runs and the browser posts the form to /login instead.
        ev.prevent_default();
        let (Some(user_el), Some(pass_el)) = (username.get(), password.get()) else {
            return;
        };
        let request = LoginRequest {
            username: user_el.value(),
            password: pass_el.value(),
            remember_me: remember.get().map(|el| el.checked()).unwrap_or(false),
            return_to: Some(destination.clone()).filter(|s| !s.is_empty()),
        };
        if request.username.trim().is_empty() || request.password.is_empty() {
            error.set(Some(login_error_message("invalid_request", None, None)));
            return;
        }
        pending.set(true);
        let destination = destination.clone();
        leptos::task::spawn_local(async move {
            match browser::post_login(&request).await {
                LoginReply::SignedIn => {
                    let target = if destination.is_empty() {
                        "/".to_owned()
                    } else {
                        destination
                    };
                    browser::go_to(&target);
                }
                LoginReply::Refused {
                    code,
                    remaining,
                    retry_after,
                } => {
                    pass_el.set_value("");
                    error.set(Some(login_error_message(&code, remaining, retry_after)));
                    pending.set(false);
                    let _ = pass_el.focus();
                }
            }
        });
    };

    view! {
        <form class="login-form" method="post" action="/login" on:submit=on_submit novalidate>
            <div class="form-error" aria-live="assertive">
                {move || error.get().map(|message| view! { <Banner tone=Tone::Error message=message/> })}
            </div>
            <input type="hidden" name="returnTo" value=return_to/>
            {show_local.then(|| view! { <input type="hidden" name="show_local" value="true"/> })}
            <label class="sr-only" for="username">"Username"</label>
            <input id="username" name="username" type="text" placeholder="Username" autocomplete="username"
                required autocapitalize="none" spellcheck="false" node_ref=username/>
            <label class="sr-only" for="password">"Password"</label>
            <input id="password" name="password" type="password" placeholder="Password"
                autocomplete="current-password" required node_ref=password/>
            <label class="checkbox">
                <input type="checkbox" name="rememberMe" value="true" node_ref=remember/>
                " Remember me"
            </label>
            <button type="submit" class="button button-primary" disabled=move || pending.get()>
                {move || if pending.get() { "Signing in…" } else { "Sign in to Pulse" }}
            </button>
        </form>
    }
}

/// Percent-encodes a query value (enough for paths: everything but unreserved characters).
pub fn encode_component(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
