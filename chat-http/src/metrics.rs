//! Prometheus metrics: requests, latencies, sockets, messages.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::AppState;
use crate::error::ApiError;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// The server's metrics registry.
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    sockets: Gauge,
    /// Messages created, over REST and WebSocket.
    pub(crate) messages: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut registry = Registry::with_prefix("chat");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        let sockets = Gauge::default();
        let messages = Counter::default();
        registry.register(
            "http_requests",
            "HTTP requests by route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register("websockets", "Open WebSocket connections", sockets.clone());
        registry.register("messages_sent", "Messages created", messages.clone());
        Self {
            registry,
            requests,
            latency,
            sockets,
            messages,
        }
    }
}

/// The method as a label: one of the standard methods, else `other`. A client may send any
/// token as a method; taken as is, each would be a new label value for as long as the process
/// lives.
fn method_label(method: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    KNOWN
        .iter()
        .find(|known| *known == method)
        .map_or("other", Method::as_str)
}

/// Middleware counting every request by its route pattern (never the raw path, whose ids would
/// make the label set unbounded) and its method (standard ones only, for the same reason).
pub(crate) async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = route_label(request.extensions().get::<MatchedPath>());
    let response = next.run(request).await;
    state
        .metrics
        .record(method, route, response.status().as_u16(), started);
    response
}

/// A route's method-not-allowed answer: the JSON error, counted like every other answer.
pub(crate) async fn method_not_allowed(
    State(state): State<AppState>,
    method: Method,
    path: Option<MatchedPath>,
) -> Response {
    let started = Instant::now();
    let response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method",
    )
    .into_response();
    let route = route_label(path.as_ref());
    state.metrics.record(
        method_label(&method),
        route,
        response.status().as_u16(),
        started,
    );
    response
}

fn route_label(path: Option<&MatchedPath>) -> String {
    path.map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned())
}

impl Metrics {
    fn record(&self, method: &'static str, route: String, status: u16, started: Instant) {
        self.latency
            .get_or_create(&RouteLabels {
                method,
                route: route.clone(),
            })
            .observe(started.elapsed().as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                method,
                route,
                status,
            })
            .inc();
    }
}

/// `GET /metrics`: the Prometheus text format.
pub(crate) async fn export(State(state): State<AppState>) -> Response {
    let metrics = &state.metrics;
    metrics
        .sockets
        .set(i64::try_from(state.sockets.count()).unwrap_or(i64::MAX));
    let mut body = String::new();
    if encode(&mut body, &metrics.registry).is_err() {
        return axum::http::StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
