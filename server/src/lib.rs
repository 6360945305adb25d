//! The Pulse BFF: builds the axum router around the Leptos app and the HTTP API, and the
//! `Application` that binds it (port 0 in tests) and runs it.
#![forbid(unsafe_code)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod cli;
pub mod client;
pub mod error;
pub mod forms;
pub mod oidc;
pub mod pages;
pub mod security;
pub mod settings_forms;
pub mod sso_forms;
pub mod state;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use axum::{
    extract::DefaultBodyLimit,
    middleware,
    routing::{any, get, post},
    Router,
};
use leptos::{config::LeptosOptions, prelude::provide_context};
use leptos_axum::{generate_route_list, LeptosRoutes};
use pulse_app::{shell, App};
use pulse_core::{clock::Clock, config::Config, Core, StartError, StartupReport};
use tower_sessions::{cookie::SameSite, session_store::ExpiredDeletion, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::SqliteStore;

use crate::{security::CspNonce, state::AppState};

pub const SESSION_COOKIE_NAME: &str = "pulse_session";
/// Bodies above this are refused with 413; sign-in and settings forms are tiny.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The Leptos options, built in code so the binary runs from any directory without Cargo.toml.
pub fn leptos_options(site_root: PathBuf, addr: SocketAddr) -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("pulse")
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build()
}

/// Finds the built site (wasm, js, css): `LEPTOS_SITE_ROOT`, else `site/` beside the binary,
/// else `../site` from it (cargo-leptos's `target/site` next to `target/release`), else `target/site`.
pub fn find_site_root() -> PathBuf {
    if let Some(root) = std::env::var_os("LEPTOS_SITE_ROOT") {
        return PathBuf::from(root);
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(PathBuf::from))
    {
        for candidate in [dir.join("site"), dir.join("../site")] {
            if candidate.join("pkg").is_dir() {
                return candidate;
            }
        }
    }
    PathBuf::from("target/site")
}

/// The session store in use (SQLite).
pub type SessionStore = SqliteStore;

pub fn router(state: AppState, session_layer: SessionManagerLayer<SessionStore>) -> Router {
    let routes = generate_route_list(App);
    let core = state.core.clone();
    let leptos_options = state.leptos_options.clone();
    let context = move || {
        provide_context(core.clone());
        // Hand the response's CSP nonce to the render so the hydration script carries it.
        if let Some(parts) = leptos::prelude::use_context::<axum::http::request::Parts>() {
            if let Some(CspNonce(nonce)) = parts.extensions.get::<CspNonce>() {
                provide_context(leptos::nonce::Nonce::from_value(nonce.clone()));
            }
        }
    };
    let server_fn_context = context.clone();

    let auth_routes = Router::new()
        .route("/api/login", post(api::login))
        .route("/login", post(forms::login))
        .route("/setup", post(forms::setup))
        .route_layer(middleware::from_fn_with_state(state.clone(), security::auth_rate_limit));

    Router::new()
        .route("/api/health", get(api::health))
        .route("/api/security/status", get(api::security_status))
        .route("/api/logout", post(api::logout))
        .route("/logout", post(forms::logout))
        .route("/api/oidc/login", get(oidc::login))
        .route("/api/oidc/callback", get(oidc::callback))
        .route("/api/oidc/backchannel-logout", post(oidc::backchannel_logout))
        .route(
            "/settings/security/authentication/password",
            post(settings_forms::change_password),
        )
        .route(
            "/settings/security/authentication/hide-local-login",
            post(settings_forms::set_hide_local_login),
        )
        .route("/settings/security/authentication/unlock", post(settings_forms::unlock))
        .route("/settings/security/sso", post(sso_forms::submit))
        .route("/settings", get(pages::settings_home))
        .route("/settings/security", get(pages::settings_home))
        .merge(auth_routes)
        .route(
            "/api/fn/{*name}",
            any(move |request: axum::extract::Request| {
                let context = server_fn_context.clone();
                async move { leptos_axum::handle_server_fns_with_context(context, request).await }
            }),
        )
        .leptos_routes_with_context(&state, routes, context, {
            let options = leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(middleware::from_fn(pages::page_access))
        .layer(middleware::from_fn_with_state(state.clone(), oidc::keep_sso_fresh))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security::same_origin_only,
        ))
        .layer(session_layer)
        .layer(middleware::from_fn_with_state(state.clone(), client::client_context))
        .layer(middleware::from_fn(security::security_headers))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Audit entries kept; older ones are deleted hourly.
pub const AUDIT_RETENTION_ENTRIES: i64 = 100_000;

async fn prune_audit_log(db: sqlx::SqlitePool) {
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        if let Err(err) = pulse_core::store::audit::prune(&db, AUDIT_RETENTION_ENTRIES).await {
            tracing::warn!(error = %err, "could not prune the audit log");
        }
    }
}

/// A bound, ready-to-run Pulse: tests build it on port 0 and read `local_addr`.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    core: Arc<Core>,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("cannot listen on {addr}: {source}. Is another program using that port? Choose another with --listen / PULSE_LISTEN.")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot prepare the session store: {0}")]
    Sessions(sqlx::Error),
}

impl Application {
    pub async fn build(
        config: Config,
        clock: Arc<dyn Clock>,
        site_root: PathBuf,
    ) -> Result<(Application, StartupReport), BuildError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| BuildError::Bind {
                addr: config.listen,
                source,
            })?;
        let secure_cookies = config.public_url_is_https();
        let (core, report) = Core::start(config, clock).await?;
        let core = Arc::new(core);

        let store = SqliteStore::new(core.db.clone());
        store.migrate().await.map_err(BuildError::Sessions)?;
        tokio::spawn(store.clone().continuously_delete_expired(Duration::from_secs(300)));
        tokio::spawn(prune_audit_log(core.db.clone()));
        let session_layer = SessionManagerLayer::new(store)
            .with_name(SESSION_COOKIE_NAME)
            .with_same_site(SameSite::Lax)
            .with_http_only(true)
            .with_secure(secure_cookies)
            .with_expiry(Expiry::OnInactivity(pulse_core::session::DEFAULT_LIFETIME));

        let addr = listener.local_addr().map_err(|source| BuildError::Bind {
            addr: core.config.listen,
            source,
        })?;
        let state = AppState::new(core.clone(), leptos_options(site_root, addr));
        let router = router(state, session_layer);
        Ok((Application { listener, router, core }, report))
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn core(&self) -> Arc<Core> {
        self.core.clone()
    }

    /// Serves until `shutdown` resolves, finishing requests in flight.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        use axum::serve::ListenerExt;
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        // Without TCP_NODELAY a response written as headers then body waits ~40 ms for the
        // peer's delayed ACK (measured on /pkg/* files by scripts/bench).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, service).with_graceful_shutdown(shutdown).await
    }
}
