//! A TCP link that delays what clients send, and can be cut, for tests of what a slow or broken
//! network does between a bus and its broker: a subscription that reaches the server well
//! after it was sent, a reconnection that fails for a while.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A link to a server on a free local port: what the client sends arrives late, what the server
/// sends at once. While it is cut, or the server refuses, it closes each connection it accepts.
#[derive(Debug)]
pub struct SlowLink {
    address: SocketAddr,
    open: Arc<AtomicBool>,
}

impl SlowLink {
    /// A link to `server` (`host:port`) that delays what clients send by `delay`.
    pub async fn to(server: String, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().expect("its address");
        let open = Arc::new(AtomicBool::new(true));
        let accepting = Arc::clone(&open);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !accepting.load(Ordering::Relaxed) {
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(&server).await else {
                    continue;
                };
                forward(client, upstream, delay);
            }
        });
        Self { address, open }
    }

    /// Where clients connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// From now on, new connections close at once (those open stay), as when the server cannot
    /// be reached.
    pub fn cut(&self) {
        self.open.store(false, Ordering::Relaxed);
    }

    /// New connections reach the server again.
    pub fn mend(&self) {
        self.open.store(true, Ordering::Relaxed);
    }
}

/// Copies each way between `client` and `upstream`, what the client sends `delay` late.
fn forward(client: TcpStream, upstream: TcpStream, delay: Duration) {
    let (mut from_client, mut to_client) = client.into_split();
    let (mut from_server, mut to_server) = upstream.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
    });
    tokio::spawn(async move {
        let mut buffer = vec![0; 64 * 1024];
        while let Ok(read @ 1..) = from_client.read(&mut buffer).await {
            tokio::time::sleep(delay).await;
            if to_server.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
    });
}
