//! # chat-http
//!
//! The REST + WebSocket facade of [`chat_core`], and the `chat-server` reference server.
//!
//! Every route lives under `/api/v1`; JSON in and out; errors as
//! `{"error": {"code", "message"}}`. `/api/v1/openapi.json` is generated from the code and
//! `/api/v1/docs` serves an interactive page from assets inside the binary. `/healthz` and
//! `/metrics` (Prometheus text) sit at the root. [`web_client`] is a chat client for people,
//! served at `/` by `chat-server`; a host that owns its root leaves it out.
//!
//! Mount it in a host application, with the host's own authentication if it has one:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use chat_core::{Chat, store::MemoryStore};
//!
//! let chat = Arc::new(Chat::new(Arc::new(MemoryStore::new())));
//! let app = axum::Router::new()
//!     .route("/", axum::routing::get(|| async { "the host's own page" }))
//!     .merge(chat_http::ChatHttp::new(chat).router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```

mod auth;
pub mod dto;
mod error;
mod extract;
mod limits;
mod metrics;
mod openapi;
mod routes;
mod serve;
mod sockets;
mod web;
mod ws;

use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chat_core::Chat;
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

pub use crate::auth::{Actor, Authenticator, BearerTokens};
pub use crate::error::{ApiError, ApiResult, ErrorBody, ErrorDetail};
pub use crate::limits::Limits;
pub use crate::openapi::ApiDoc;
pub use crate::serve::{ConnectionLimits, serve};
pub use crate::web::web_client;

/// The shared state of every handler.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Shared>);

pub(crate) struct Shared {
    pub(crate) chat: Arc<Chat>,
    pub(crate) authenticator: Arc<dyn Authenticator>,
    pub(crate) limits: Limits,
    pub(crate) rate: limits::RateLimits,
    pub(crate) sockets: sockets::Sockets,
    pub(crate) metrics: metrics::Metrics,
}

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Builds the HTTP facade of a [`Chat`].
pub struct ChatHttp {
    chat: Arc<Chat>,
    authenticator: Arc<dyn Authenticator>,
    limits: Limits,
}

impl ChatHttp {
    /// The facade with bearer-token authentication and default limits.
    pub fn new(chat: Arc<Chat>) -> Self {
        Self {
            chat,
            authenticator: Arc::new(BearerTokens),
            limits: Limits::default(),
        }
    }

    /// How requests become acting users (default: [`BearerTokens`]).
    pub fn authenticator(mut self, authenticator: impl Authenticator) -> Self {
        self.authenticator = Arc::new(authenticator);
        self
    }

    /// Sizes and rates (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The router: `/api/v1/…`, `/api/v1/openapi.json`, `/api/v1/docs`, `/healthz`,
    /// `/metrics`.
    pub fn router(self) -> Router {
        let state = AppState(Arc::new(Shared {
            rate: limits::RateLimits::new(&self.limits),
            sockets: sockets::Sockets::default(),
            metrics: metrics::Metrics::new(),
            chat: self.chat,
            authenticator: self.authenticator,
            limits: self.limits,
        }));
        let api = routes::api()
            .route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                metrics::track,
            ))
            .fallback(|| async { ApiError::not_found("route") })
            .method_not_allowed_fallback(metrics::method_not_allowed);
        Router::new()
            .nest("/api/v1", api)
            .merge(SwaggerUi::new("/api/v1/docs").url("/api/v1/openapi.json", ApiDoc::openapi()))
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics::export))
            .layer(DefaultBodyLimit::max(state.limits.max_body_bytes))
            .layer(TraceLayer::new_for_http())
            .with_state(state)
    }
}

/// `ok`, or 503 while the store cannot be reached: what a load balancer asks.
async fn healthz(State(state): State<AppState>) -> Response {
    match state.chat.check_store().await {
        Ok(()) if !state.chat.bus_connected() => {
            (StatusCode::SERVICE_UNAVAILABLE, "event bus unavailable").into_response()
        }
        Ok(()) => "ok".into_response(),
        Err(error) => {
            tracing::warn!(
                error = &error as &dyn std::error::Error,
                "health check failed"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable").into_response()
        }
    }
}

/// The router of a [`Chat`] with default settings: `ChatHttp::new(chat).router()`.
pub fn router(chat: Arc<Chat>) -> Router {
    ChatHttp::new(chat).router()
}
