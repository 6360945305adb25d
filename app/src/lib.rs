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
    lazy_route, path, Lazy, LazyRoute, SsrMode,
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
                    <Route path=path!("/") view={Lazy::<HomeRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/setup") view={Lazy::<SetupRoute>::new()} ssr=SsrMode::Async/>
                    // Every page but the login page is split out of the main WebAssembly module
                    // (`cargo leptos --split`): the login page does not download them.
                    <Route path=path!("/settings/security/sessions") view={Lazy::<SessionsRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/settings/security/audit") view={Lazy::<AuditRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/settings/security/authentication") view={Lazy::<AuthenticationRoute>::new()} ssr=SsrMode::Async/>
                    <Route path=path!("/settings/security/sso") view={Lazy::<SsoRoute>::new()} ssr=SsrMode::Async/>
                </Routes>
            </main>
        </Router>
    }
}

/// A page loaded on demand: its code is its own WebAssembly chunk. Only the login page (the one
/// every visitor meets first, and the budget's subject) stays in the main module.
macro_rules! lazy_screen {
    ($route:ident, $page:ident) => {
        struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                view! { <$page/> }.into_any()
            }
        }
    };
}

lazy_screen!(SsoRoute, SsoPage);
lazy_screen!(AuthenticationRoute, AuthenticationPage);
lazy_screen!(SessionsRoute, SessionsPage);
lazy_screen!(AuditRoute, AuditPage);
lazy_screen!(HomeRoute, HomePage);
lazy_screen!(SetupRoute, SetupPage);
