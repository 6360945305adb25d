//! `/settings/security/sessions`: where one is signed in, with a way to end each session.
use leptos::prelude::*;

use crate::{
    api::{list_sessions, RevokeSession, SessionInfo},
    components::{Banner, Tone},
};

fn when(unix: i64) -> String {
    // Rendered identically on server and client (UTC), so hydration matches.
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", secs / 3600, (secs % 3600) / 60)
}

/// Howard Hinnant's days-to-civil algorithm: no date library in the WebAssembly bundle.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[component]
pub fn SessionsPage() -> impl IntoView {
    let revoke = ServerAction::<RevokeSession>::new();
    let sessions = Resource::new(move || revoke.version().get(), |_| list_sessions());
    view! {
        <div class="settings-page">
            <header class="settings-header">
                <a href="/" class="back-link">"← Back to Pulse"</a>
                <h1>"Sessions"</h1>
                <p class="muted">"Where you are signed in. Ending a session signs that browser out at its next request."</p>
            </header>
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
        </div>
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_times_in_utc() {
        assert_eq!(when(0), "1970-01-01 00:00 UTC");
        assert_eq!(when(1_796_418_898), "2026-12-04 21:14 UTC");
    }
}
