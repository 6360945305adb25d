//! `/`: the landing page (the monitoring dashboard grows here) — who is signed in, and how.
use leptos::prelude::*;

use crate::{
    api::{get_viewer, Viewer},
    browser,
    components::{Banner, Logo, Tone},
};

#[component]
pub fn HomePage() -> impl IntoView {
    let viewer = Resource::new(|| (), |_| get_viewer());
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match viewer.await {
                    Ok(Some(viewer)) => view! { <Dashboard viewer=viewer/> }.into_any(),
                    Ok(None) => {
                        // Reached only by client-side navigation; the server redirects page loads.
                        browser::go_to("/login?returnTo=/");
                        view! { <p class="muted">"Redirecting to sign in…"</p> }.into_any()
                    }
                    Err(_) => view! {
                        <Banner tone=Tone::Error message="Pulse could not read your session. Reload the page."/>
                    }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn Dashboard(viewer: Viewer) -> impl IntoView {
    let method = if viewer.auth_method == "oidc" {
        "single sign-on"
    } else {
        "username and password"
    };
    let groups = if viewer.groups.is_empty() {
        "none".to_owned()
    } else {
        viewer.groups.join(", ")
    };
    view! {
        <div class="app-shell">
            <header class="topbar">
                <div class="brand"><Logo/><span>"Pulse"</span></div>
                <div class="topbar-user">
                    {(viewer.role == "admin").then(|| view! { <a href="/settings/security/sso">"Settings"</a> })}
                    <a href="/settings/security/sessions">"Sessions"</a>
                    <span class="signed-in-as">"Signed in as "<strong data-testid="username">{viewer.username.clone()}</strong></span>
                    <form method="post" action="/logout">
                        <button type="submit" class="button button-secondary">"Sign out"</button>
                    </form>
                </div>
            </header>
            <section class="panel">
                <h1>"Dashboard"</h1>
                <p class="muted">"Monitoring for Proxmox, Docker and Kubernetes will appear here."</p>
                <dl class="facts">
                    <dt>"User"</dt><dd data-testid="viewer-username">{viewer.username}</dd>
                    <dt>"Email"</dt><dd data-testid="viewer-email">{viewer.email.unwrap_or_else(|| "—".to_owned())}</dd>
                    <dt>"Groups"</dt><dd data-testid="viewer-groups">{groups}</dd>
                    <dt>"Role"</dt><dd data-testid="viewer-role">{viewer.role}</dd>
                    <dt>"Signed in with"</dt><dd data-testid="viewer-method">{method}</dd>
                </dl>
            </section>
        </div>
    }
}
