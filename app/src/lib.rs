//! The Pulse UI: pages and components rendered on the server and hydrated in the browser, and
//! the server functions they call. All sign-in logic lives in `pulse-core`; this crate only shows it.
#![forbid(unsafe_code)]
// The settings forms are deep view trees; the release (wasm) build needs more than the default 128.
#![recursion_limit = "256"]
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod api;
mod browser;
pub mod components;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod ssr;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

use crate::pages::{
    audit::AuditPage, authentication::AuthenticationPage, home::HomePage, login::LoginPage, sessions::SessionsPage,
    setup::SetupPage, sso::SsoPage, NotFound,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="stylesheet" href="/pkg/pulse.css"/>
                <link rel="icon" href="data:,"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    Effect::new(move |_| browser::mark_hydrated());
    // Async SSR: pages arrive complete, so they work before (and without) WebAssembly.
    view! {
        <Title text="Pulse"/>
        <Router>
            <main>
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=HomePage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/setup") view=SetupPage ssr=SsrMode::Async/>
                    <Route path=path!("/settings/security/sessions") view=SessionsPage ssr=SsrMode::Async/>
                    <Route path=path!("/settings/security/audit") view=AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/settings/security/authentication") view=AuthenticationPage ssr=SsrMode::Async/>
                    <Route path=path!("/settings/security/sso") view=SsoPage ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}
