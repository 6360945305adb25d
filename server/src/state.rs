//! The one shared state, built once in `Application::build` and handed to every route.
use std::{net::IpAddr, num::NonZeroU32, sync::Arc};

use axum::extract::FromRef;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use leptos::config::LeptosOptions;
use pulse_core::Core;

/// Sign-in attempts a client IP may make per minute, on top of the per-account lockout.
pub const AUTH_REQUESTS_PER_MINUTE: u32 = 30;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub core: Arc<Core>,
    pub leptos_options: LeptosOptions,
    pub auth_limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl AppState {
    pub fn new(core: Arc<Core>, leptos_options: LeptosOptions) -> Self {
        let per_minute = NonZeroU32::new(AUTH_REQUESTS_PER_MINUTE).unwrap_or(NonZeroU32::MIN);
        Self {
            core,
            leptos_options,
            auth_limiter: Arc::new(RateLimiter::keyed(Quota::per_minute(per_minute))),
        }
    }
}
