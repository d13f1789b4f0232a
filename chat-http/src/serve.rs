//! Serving the router over TCP with bounds on connections: what `axum::serve` leaves open.
//!
//! A client that trickles its headers a byte at a time, or opens connections and sends nothing,
//! used to hold a socket and a file descriptor for as long as it liked; enough of them and the
//! process ran out of descriptors, after which even `/healthz` failed.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Bounds on the connections [`serve`] keeps open.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// Connections open at once (default 10 000). Beyond it a new connection is closed as soon
    /// as it is accepted, so the process keeps descriptors for its store and its own use.
    pub max_connections: usize,
    /// How long a request's headers may take to arrive (default 30 s), counted from when the
    /// server starts waiting for them: bytes trickling in do not extend it. The same bound
    /// closes a keep-alive connection that sits idle between requests.
    pub header_read_timeout: Duration,
    /// How long, at most, requests in flight and open WebSockets have to finish once shutdown
    /// begins (default 5 s).
    pub shutdown_grace: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl ConnectionLimits {
    /// Sets [`max_connections`](Self::max_connections).
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Sets [`header_read_timeout`](Self::header_read_timeout).
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }
}

/// Serves `app` (HTTP/1.1, WebSocket upgrades included) on `listener` until `shutdown`
/// completes, then lets requests in flight finish for at most
/// [`ConnectionLimits::shutdown_grace`]. Handlers can extract `ConnectInfo<SocketAddr>`.
///
/// Accept errors (a full descriptor table among them) are logged and retried after a short
/// pause; the loop never ends on one.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let max = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max));
    let (stopping, stop) = watch::channel(());
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    accept_failed(&error).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Without it a WebSocket reply written right after an event frame waits for the
        // client's delayed ACK (40 ms on Linux): Nagle's algorithm holds small writes while one
        // is unacknowledged.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(%peer, "connection closed: at the connection limit");
            continue;
        };
        let slot = ConnectionSlot {
            _permit: Arc::new(slot),
        };
        let app = app.clone();
        let requests_slot = slot.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(requests_slot.clone());
            app.clone().oneshot(request.map(Body::new))
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = stop.changed() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = stopping.send(());
    // Every connection holds a slot until it ends: all slots back means all done.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(limits.shutdown_grace, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::info!("requests still in flight at the end of the shutdown grace");
    }
    Ok(())
}

/// A connection's place under [`ConnectionLimits::max_connections`], freed when the last
/// holder lets go: the connection's own task, and the WebSocket it may have become (hyper's
/// connection ends at the upgrade, while the socket keeps its descriptor).
#[derive(Clone)]
pub(crate) struct ConnectionSlot {
    _permit: Arc<tokio::sync::OwnedSemaphorePermit>,
}

/// Connection-level errors concern one client; anything else (out of descriptors, out of
/// memory) will last a moment: wait before accepting again rather than spin.
async fn accept_failed(error: &io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::warn!(%error, "accept failed; retrying in 50 ms");
    tokio::time::sleep(Duration::from_millis(50)).await;
}
