//! `/settings/security/audit` (admins): who signed in or out, failed, refreshed, changed settings.
//! Filters and paging are plain GET links and forms, so the page works without JavaScript.
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use crate::{
    api::{list_audit, AuditEntry},
    components::{format_utc, Banner, SettingsFrame, Tone},
};

const EVENTS: &[(&str, &str)] = &[
    ("", "All events"),
    ("login", "Sign-ins"),
    ("logout", "Sign-outs"),
    ("refresh", "Token refreshes"),
    ("settings", "Settings changes"),
];

#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let filters = move || {
        query.with(|q| {
            (
                q.get("event").unwrap_or_default(),
                q.get("user").unwrap_or_default(),
                q.get("page").and_then(|p| p.parse::<i64>().ok()).unwrap_or(0).max(0),
            )
        })
    };
    let entries = Resource::new(filters, |(event, user, page)| list_audit(Some(event), Some(user), page));
    view! {
        <SettingsFrame title="Audit log" intro="Sign-ins (with the reason for each failure), sign-outs, token refreshes that ended sessions, and settings changes, newest first.">
            <form method="get" action="/settings/security/audit" class="filters">
                <label for="event">"Event"</label>
                <select id="event" name="event">
                    {move || {
                        let current = filters().0;
                        EVENTS.iter().map(|(value, label)| view! {
                            <option value=*value selected=current == *value>{*label}</option>
                        }).collect_view()
                    }}
                </select>
                <label for="user">"User"</label>
                <input id="user" name="user" type="text" value=move || filters().1 placeholder="username"/>
                <button type="submit" class="button button-secondary">"Filter"</button>
            </form>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let (event, user, page) = filters();
                    match entries.await {
                        Ok(found) => view! {
                            <AuditTable entries=found.entries/>
                            <nav class="pager" aria-label="Pages">
                                {(page > 0).then(|| view! { <a href=page_link(&event, &user, page - 1)>"← Newer"</a> })}
                                {found.has_more.then(|| view! { <a href=page_link(&event, &user, page + 1)>"Older →"</a> })}
                            </nav>
                        }.into_any(),
                        Err(err) if err.to_string().contains("forbidden") => view! {
                            <Banner tone=Tone::Error message="Only administrators can read the audit log."/>
                        }.into_any(),
                        Err(_) => view! { <Banner tone=Tone::Error message="Pulse could not read the audit log. Reload the page."/> }.into_any(),
                    }
                })}
            </Suspense>
        </SettingsFrame>
    }
}

fn page_link(event: &str, user: &str, page: i64) -> String {
    let encode = crate::pages::login::encode_component;
    format!(
        "/settings/security/audit?event={}&user={}&page={page}",
        encode(event),
        encode(user)
    )
}

#[component]
fn AuditTable(entries: Vec<AuditEntry>) -> impl IntoView {
    if entries.is_empty() {
        return view! { <p class="muted">"Nothing recorded yet for this filter."</p> }.into_any();
    }
    view! {
        <table class="sessions audit">
            <thead>
                <tr>
                    <th scope="col">"Time"</th>
                    <th scope="col">"Event"</th>
                    <th scope="col">"Result"</th>
                    <th scope="col">"User"</th>
                    <th scope="col">"Method"</th>
                    <th scope="col">"IP address"</th>
                    <th scope="col">"Details"</th>
                </tr>
            </thead>
            <tbody>
                {entries.into_iter().map(|entry| {
                    let result = match (&entry.outcome[..], &entry.reason) {
                        ("success", _) => "Success".to_owned(),
                        (_, Some(reason)) => format!("Failed: {reason}"),
                        _ => "Failed".to_owned(),
                    };
                    view! {
                        <tr data-testid="audit-row">
                            <td>{format_utc(entry.at)}</td>
                            <td>{entry.event}</td>
                            <td class:failure=entry.outcome != "success">{result}</td>
                            <td>{entry.username.unwrap_or_else(|| "—".to_owned())}</td>
                            <td>{entry.method.unwrap_or_else(|| "—".to_owned())}</td>
                            <td>{entry.ip.unwrap_or_else(|| "—".to_owned())}</td>
                            <td>{entry.detail.unwrap_or_default()}</td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}
