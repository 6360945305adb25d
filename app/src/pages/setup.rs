//! `/setup`: first run only — create the administrator with the one-time token from the log.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::{
    api::get_login_options,
    components::{AuthFrame, Banner, Tone},
};

/// The sentence for a setup failure code carried back by the form's redirect.
pub fn setup_error_message(code: &str) -> &'static str {
    match code {
        "bad_token" => "The setup token is missing or wrong. Use the link printed in Pulse's log, or the token in the data directory's .setup-token file.",
        "username_invalid" => "Choose a username of 1 to 64 characters.",
        "password_short" => "The password must be at least 12 characters long.",
        "password_mismatch" => "The two passwords do not match.",
        "already_done" => "Pulse is already set up. Sign in instead.",
        "rate_limited" => "Too many attempts. Wait a minute and try again.",
        _ => "Setup failed because of a server problem. Try again, or check the Pulse log.",
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let query = use_query_map();
    let token = query.with_untracked(|q| q.get("token")).unwrap_or_default();
    let error = query.with_untracked(|q| q.get("error"));
    let username = query
        .with_untracked(|q| q.get("username"))
        .unwrap_or_else(|| "admin".to_owned());
    let options = Resource::new(|| (), |_| get_login_options());

    view! {
        <AuthFrame title="Set up Pulse" subtitle="Create the administrator account">
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new({
                    let token = token.clone();
                    let error = error.clone();
                    let username = username.clone();
                    async move {
                        match options.await {
                            Ok(options) if !options.setup_required => view! {
                                <Banner tone=Tone::Info message="Pulse is already set up."/>
                                <a class="button button-primary" href="/login">"Go to sign in"</a>
                            }.into_any(),
                            Ok(_) => view! {
                                <SetupForm token=token error=error username=username/>
                            }.into_any(),
                            Err(_) => view! {
                                <Banner tone=Tone::Error message="Pulse could not read its accounts. Check the Pulse log."/>
                            }.into_any(),
                        }
                    }
                })}
            </Suspense>
        </AuthFrame>
    }
}

#[component]
fn SetupForm(token: String, error: Option<String>, username: String) -> impl IntoView {
    let token_known = !token.is_empty();
    view! {
        <form class="setup-form" method="post" action="/setup">
            {error.map(|code| view! { <Banner tone=Tone::Error message=setup_error_message(&code)/> })}
            {if token_known {
                view! { <input type="hidden" name="token" value=token/> }.into_any()
            } else {
                view! {
                    <label for="token">"Setup token"</label>
                    <input id="token" name="token" type="text" autocomplete="off" required
                        placeholder="From the log or <data dir>/.setup-token"/>
                }.into_any()
            }}
            <label for="username">"Username"</label>
            <input id="username" name="username" type="text" value=username autocomplete="username" required/>
            <label for="password">"Password"</label>
            <input id="password" name="password" type="password" autocomplete="new-password" required
                minlength="12" aria-describedby="password-hint"/>
            <p id="password-hint" class="hint">"At least 12 characters."</p>
            <label for="confirm">"Confirm password"</label>
            <input id="confirm" name="confirm" type="password" autocomplete="new-password" required minlength="12"/>
            <button type="submit" class="button button-primary">"Create administrator"</button>
        </form>
    }
}
