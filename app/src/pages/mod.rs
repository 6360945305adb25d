//! One module per page.
pub mod audit;
pub mod authentication;
pub mod home;
pub mod login;
pub mod sessions;
pub mod setup;
pub mod sso;

use leptos::prelude::*;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
    view! {
        <div class="auth-page">
            <div class="card">
                <h1>"Page not found"</h1>
                <p><a href="/">"Back to Pulse"</a></p>
            </div>
        </div>
    }
}
