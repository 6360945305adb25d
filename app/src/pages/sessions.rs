//! `/settings/security/sessions`: where one is signed in, with a way to end each session.
use leptos::prelude::*;

use crate::{
    api::{list_sessions, RevokeSession, SessionInfo},
    components::{format_utc as when, Banner, SettingsFrame, Tone},
};

#[component]
pub fn SessionsPage() -> impl IntoView {
    let revoke = ServerAction::<RevokeSession>::new();
    let sessions = Resource::new(move || revoke.version().get(), |_| list_sessions());
    view! {
        <SettingsFrame title="Sessions" intro="Where you are signed in. Ending a session signs that browser out at its next request.">
            {move || revoke.value().get().and_then(|r| r.err()).map(|_| view! {
                <Banner tone=Tone::Error message="That session could not be ended. Reload the page and try again."/>
            })}
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match sessions.await {
                        Ok(view) => view! { <SessionTable rows=view.sessions show_user=view.viewer_is_admin revoke=revoke/> }.into_any(),
                        Err(_) => view! { <Banner tone=Tone::Error message="Pulse could not list the sessions. Reload the page."/> }.into_any(),
                    }
                })}
            </Suspense>
            <p class="muted small-left">
                "Single sign-on sessions marked “renews with provider” stay signed in as long as the identity provider keeps refreshing them (up to 30 days) and end as soon as it refuses. Others last 24 hours (30 days with “Remember me”) and are not re-checked at the provider; ask for the "
                <code>"offline_access"</code>" scope to get long-lived, revocable sessions."
            </p>
        </SettingsFrame>
    }
}

#[component]
fn SessionTable(rows: Vec<SessionInfo>, show_user: bool, revoke: ServerAction<RevokeSession>) -> impl IntoView {
    if rows.is_empty() {
        return view! { <p class="muted">"No active sessions."</p> }.into_any();
    }
    view! {
        <table class="sessions">
            <thead>
                <tr>
                    {show_user.then(|| view! { <th scope="col">"User"</th> })}
                    <th scope="col">"Browser"</th>
                    <th scope="col">"IP address"</th>
                    <th scope="col">"Method"</th>
                    <th scope="col">"Signed in"</th>
                    <th scope="col">"Last seen"</th>
                    <th scope="col">"Lifetime"</th>
                    <th scope="col"><span class="sr-only">"Actions"</span></th>
                </tr>
            </thead>
            <tbody>
                {rows.into_iter().map(|row| {
                    let method = if row.method == "oidc" { "Single sign-on" } else { "Password" };
                    let lifetime = if row.renews_with_provider { "Renews with provider".to_owned() } else { format!("Until {}", when(row.expires_at)) };
                    view! {
                        <tr data-testid="session-row" class:current=row.current>
                            {show_user.then(|| view! { <td>{row.username.clone()}</td> })}
                            <td>{row.browser.clone()}{row.current.then(|| view! { <span class="badge">"This browser"</span> })}</td>
                            <td>{row.ip.clone().unwrap_or_else(|| "—".to_owned())}</td>
                            <td>{method}</td>
                            <td>{when(row.created_at)}</td>
                            <td>{when(row.last_seen_at)}</td>
                            <td>{lifetime}</td>
                            <td>
                                <ActionForm action=revoke>
                                    <input type="hidden" name="id" value=row.id.clone()/>
                                    <button type="submit" class="button button-secondary">
                                        {if row.current { "Sign out" } else { "Revoke" }}
                                    </button>
                                </ActionForm>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }.into_any()
}
