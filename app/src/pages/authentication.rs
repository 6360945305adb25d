//! `/settings/security/authentication`: change password, hide the local login form, unlock
//! locked-out accounts and addresses. Plain form posts (303 back here with a result code), so the
//! screen works without JavaScript.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::{
    api::{get_auth_settings, AuthSettings},
    components::{format_utc, Banner, SettingsFrame, Tone},
};

fn result_message(code: &str) -> Option<(Tone, &'static str)> {
    Some(match code {
        "password_changed" => (Tone::Success, "Password changed. Your other sessions were signed out."),
        "saved" => (Tone::Success, "Saved."),
        "unlocked" => (Tone::Success, "Unlocked."),
        _ => return None,
    })
}

fn error_message(code: &str) -> &'static str {
    match code {
        "wrong_current_password" => "The current password is wrong.",
        "password_short" => "The new password must be at least 12 characters long.",
        "password_mismatch" => "The two new passwords do not match.",
        "not_local" => "Your account signs in with single sign-on; its password is managed by your identity provider.",
        "hide_env_managed" => "This setting is managed by the PULSE_AUTH_HIDE_LOCAL_LOGIN environment variable.",
        "hide_requires_sso" => "The local login form can only be hidden once single sign-on is on and has passed Test connection (Settings › Security › Single sign-on); otherwise nobody could sign in.",
        "forbidden" => "Only administrators can change this.",
        "invalid_request" => "The form was incomplete. Try again.",
        _ => "Saving failed because of a server problem. Check the Pulse log.",
    }
}

#[component]
pub fn AuthenticationPage() -> impl IntoView {
    let query = use_query_map();
    let result = query
        .with_untracked(|q| q.get("result"))
        .and_then(|c| result_message(&c));
    let error = query.with_untracked(|q| q.get("error")).map(|c| error_message(&c));
    let settings = Resource::new(|| (), |_| get_auth_settings());
    view! {
        <SettingsFrame title="Authentication" intro="Your password, the local login form, and locked-out accounts.">
            {result.map(|(tone, text)| view! { <Banner tone=tone message=text/> })}
            {error.map(|text| view! { <Banner tone=Tone::Error message=text/> })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match settings.await {
                        Ok(settings) => view! { <Sections settings=settings/> }.into_any(),
                        Err(err) if err.to_string().contains("forbidden") => view! {
                            <Banner tone=Tone::Error message="Only administrators can open the authentication settings."/>
                        }.into_any(),
                        Err(_) => view! { <Banner tone=Tone::Error message="Pulse could not read these settings. Reload the page."/> }.into_any(),
                    }
                })}
            </Suspense>
        </SettingsFrame>
    }
}

#[component]
fn Sections(settings: AuthSettings) -> impl IntoView {
    let sso_ready = settings.sso_active && settings.sso_verified;
    let toggle_locked = settings.hide_env_managed || (!sso_ready && !settings.hide_local_login);
    view! {
        {settings.has_password.then(|| view! {
            <section class="panel-section">
                <h2>"Change password"</h2>
                <form method="post" action="/settings/security/authentication/password" class="stacked">
                    <label for="current">"Current password"</label>
                    <input id="current" name="current" type="password" autocomplete="current-password" required/>
                    <label for="new">"New password"</label>
                    <input id="new" name="new" type="password" autocomplete="new-password" minlength="12" required aria-describedby="new-hint"/>
                    <p id="new-hint" class="hint">"At least 12 characters. Your other sessions will be signed out."</p>
                    <label for="confirm">"Confirm new password"</label>
                    <input id="confirm" name="confirm" type="password" autocomplete="new-password" minlength="12" required/>
                    <button type="submit" class="button button-primary narrow">"Change password"</button>
                </form>
            </section>
        })}
        {settings.is_admin.then(|| view! {
            <section class="panel-section">
                <h2>"Hide local login form"</h2>
                <p class="muted">"Hide the username/password form on the login page. Users will only see SSO options unless "<code>"?show_local=true"</code>" is used. The form is never hidden while single sign-on is off."</p>
                {settings.hide_env_managed.then(|| view! {
                    <p class="hint" data-testid="hide-managed">"This setting is managed by the PULSE_AUTH_HIDE_LOCAL_LOGIN environment variable."</p>
                })}
                {(!sso_ready && !settings.hide_env_managed).then(|| view! {
                    <p class="hint" data-testid="hide-requires-sso">
                        {if settings.sso_active { "Run Test connection on " } else { "Turn on and test " }}
                        <a href="/settings/security/sso">"single sign-on"</a>
                        " first: hiding the form while single sign-on does not work would lock everyone out."
                    </p>
                })}
                <form method="post" action="/settings/security/authentication/hide-local-login" class="inline">
                    <input type="hidden" name="hide" value=if settings.hide_local_login { "false" } else { "true" }/>
                    <span data-testid="hide-state">{if settings.hide_local_login { "Hidden" } else { "Shown" }}</span>
                    <button type="submit" class="button button-secondary" disabled=toggle_locked>
                        {if settings.hide_local_login { "Show the local login form" } else { "Hide the local login form" }}
                    </button>
                </form>
            </section>
            <section class="panel-section">
                <h2>"Locked out"</h2>
                {if settings.locks.is_empty() {
                    view! { <p class="muted">"Nothing is locked."</p> }.into_any()
                } else {
                    view! {
                        <table class="sessions">
                            <thead><tr><th scope="col">"Account or address"</th><th scope="col">"Locked until"</th><th scope="col"><span class="sr-only">"Actions"</span></th></tr></thead>
                            <tbody>
                                {settings.locks.iter().map(|lock| view! {
                                    <tr data-testid="lock-row">
                                        <td>{if lock.scope == "ip" { format!("IP {}", lock.subject) } else { format!("Account {}", lock.subject) }}</td>
                                        <td>{format_utc(lock.until)}</td>
                                        <td>
                                            <form method="post" action="/settings/security/authentication/unlock">
                                                <input type="hidden" name="scope" value=lock.scope.clone()/>
                                                <input type="hidden" name="subject" value=lock.subject.clone()/>
                                                <button type="submit" class="button button-secondary">"Unlock"</button>
                                            </form>
                                        </td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any()
                }}
            </section>
        })}
    }
}
