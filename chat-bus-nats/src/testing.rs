//! For tests that need NATS: where it is, whether to skip, and a private server to stop and
//! start (feature `testing`).
#![allow(clippy::expect_used, missing_docs)]

use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test server: `CHAT_TEST_NATS_URL`, or NATS on this machine.
pub fn test_url() -> String {
    std::env::var("CHAT_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Whether something accepts connections at `url`'s host and port.
fn answers(url: &str) -> bool {
    let address = url.trim_start_matches("nats://");
    address
        .to_socket_addrs()
        .ok()
        .into_iter()
        .flatten()
        .any(|address| TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok())
}

/// Why NATS tests cannot run here (`None` when the server answers). Panics instead when
/// `CHAT_TEST_REQUIRE_NATS=1`, so that CI cannot pass by skipping them.
pub fn nats_missing() -> Option<String> {
    let url = test_url();
    if answers(&url) {
        return None;
    }
    let why = format!("no NATS answers at {url} (set CHAT_TEST_NATS_URL)");
    if std::env::var("CHAT_TEST_REQUIRE_NATS").is_ok_and(|v| v == "1") {
        panic!("{why}, and CHAT_TEST_REQUIRE_NATS=1");
    }
    Some(why)
}

/// A `nats-server` of a test's own on a free port, to stop and start under running nodes;
/// stopped when dropped.
#[derive(Debug)]
pub struct PrivateServer {
    pub url: String,
    port: u16,
    child: Option<Child>,
}

impl PrivateServer {
    /// Starts one, if the `nats-server` program is installed (`None` otherwise). The port is
    /// free when picked; should another process take it first, the next pick is tried.
    pub fn start() -> Option<Self> {
        (0..5).find_map(|_| {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let mut server = Self {
                url: format!("nats://127.0.0.1:{port}"),
                port,
                child: None,
            };
            server.resume().then_some(server)
        })
    }

    /// Stops the server (its clients see the connection drop).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port; returns whether it answers.
    pub fn resume(&mut self) -> bool {
        let started = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = started else {
            return false;
        };
        let child = self.child.insert(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            // A server that exited (its port taken) is not the one answering.
            if !matches!(child.try_wait(), Ok(None)) {
                self.child = None;
                return false;
            }
            if answers(&self.url) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        self.stop();
    }
}
