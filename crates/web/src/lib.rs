//! lakegate's HTTP delivery: the axum router with every layer in one place, sign-in and
//! sessions, CSRF-checked forms, server-rendered pages, and the credentials URL. Handlers are
//! thin: extract, call one lakegate-app verb, render or redirect.
#![forbid(unsafe_code)]

mod csrf;
mod error;
mod extract;
mod middleware;
pub mod oidc;
mod routes;
mod session;
pub mod slack;
mod state;
mod views;

use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

pub use error::WebError;
/// The JSON API's bodies, for its clients (the `lakegate` command line).
pub use routes::api::model as api;
pub use session::{PgSessionStore, run_session_sweeper, session_store};
pub use state::AppState;

/// Largest request body accepted; forms are small.
const BODY_LIMIT: usize = 64 * 1024;
/// The query console's form carries SQL: Athena takes up to 256 KiB of it, which URL-encoding
/// can triple.
const CONSOLE_BODY_LIMIT: usize = 1024 * 1024;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where people and SDKs reach lakegate, e.g. `https://lakegate.example.com`; no trailing `/`.
    pub public_url: String,
    /// How people sign in. Built only once the identity provider has been discovered, so a
    /// configuration with an OpenID Connect provider that nobody reached cannot exist.
    pub sign_in: SignIn,
    /// Session cookies carry `Secure`; on whenever the public URL is https.
    pub secure_cookies: bool,
    /// Sessions end after this long without a request.
    pub session_idle: time::Duration,
    /// Sessions end this long after sign-in, whatever happens in between.
    pub session_max: time::Duration,
    /// With OpenID Connect: groups are re-read from the provider at least this often (and
    /// always before decisions and admin actions).
    pub groups_refresh: time::Duration,
    /// Slack's Web API and the signing secret of its interactions, when Slack is configured.
    pub slack: Option<std::sync::Arc<slack::Slack>>,
}

/// The one way people sign in on this server.
#[derive(Debug, Clone)]
pub enum SignIn {
    /// The organisation's identity provider, discovered.
    Oidc(std::sync::Arc<oidc::Oidc>),
    /// The development form (`/auth/dev`), which trusts whatever is typed: only with a loopback
    /// public URL, and only for requests made directly from this machine.
    Development,
}

impl WebConfig {
    pub fn oidc(&self) -> Option<&oidc::Oidc> {
        match &self.sign_in {
            SignIn::Oidc(o) => Some(o),
            SignIn::Development => None,
        }
    }

    pub fn dev_login(&self) -> bool {
        matches!(self.sign_in, SignIn::Development)
    }
}

impl WebConfig {
    /// `scheme://host[:port]` of the public URL, what browsers send as `Origin`.
    pub fn origin(&self) -> &str {
        let after_scheme = self.public_url.find("://").map_or(0, |i| i + 3);
        match self.public_url[after_scheme..].find('/') {
            Some(i) => &self.public_url[..after_scheme + i],
            None => &self.public_url,
        }
    }
}

/// The whole application: routes, sessions, static files, and the layer stack.
pub fn router(state: AppState, sessions: PgSessionStore) -> Router {
    let config = state.config.clone();
    let https = config.public_url.starts_with("https://");
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name("lakegate_session")
        .with_secure(config.secure_cookies)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(config.session_idle));

    let forms = Router::new()
        .merge(routes::health::router())
        .merge(routes::auth::router())
        .merge(routes::requests::router())
        .merge(routes::picker::router())
        .merge(routes::assets::router())
        .merge(routes::audit::router())
        .merge(routes::settings::router())
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT));
    let console = routes::console::router().layer(RequestBodyLimitLayer::new(CONSOLE_BODY_LIMIT));
    // The API reads bodies only through its JSON extractor, which answers a body over the
    // limit with a JSON 413 (a layer would answer plain text); as large as the console's.
    // The MCP server's bodies carry SQL too.
    let api = routes::api::router()
        .merge(routes::mcp::router())
        .merge(routes::slack::router())
        .layer(axum::extract::DefaultBodyLimit::max(CONSOLE_BODY_LIMIT));
    // Everything a person or a program signs in to, under the session layer.
    let signed = Router::new()
        .merge(forms)
        .merge(console)
        .merge(api)
        .fallback(routes::not_found)
        .layer(session_layer);
    // The credentials URL, which every SDK process of a grant polls, authenticates by its
    // token alone: no session layer (docs/decisions/0025-a-quiet-fast-credentials-url.md).
    let credentials = routes::credentials::router().layer(RequestBodyLimitLayer::new(BODY_LIMIT));
    Router::new()
        .merge(credentials)
        .merge(signed)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ))
        .layer(middleware::security_headers(https))
        .layer(axum::middleware::from_fn(middleware::http_metrics))
        .layer(middleware::trace_layer())
        .layer(middleware::request_id_layer())
        .with_state(state)
}
