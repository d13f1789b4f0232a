//! For tests that need PostgreSQL: where it is, a throwaway schema per test, and whether to
//! skip (feature `testing`).
#![allow(clippy::expect_used, missing_docs)]

use std::net::{TcpStream, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// The test database: `CHAT_TEST_POSTGRES_URL`, or PostgreSQL on this machine.
pub fn test_url() -> String {
    std::env::var("CHAT_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Why PostgreSQL tests cannot run here (`None` when the server answers). Panics instead when
/// `CHAT_TEST_REQUIRE_POSTGRES=1`, so that CI cannot pass by skipping them.
pub fn postgres_missing() -> Option<String> {
    let url = test_url();
    let reachable = PgConnectOptions::from_str(&url)
        .ok()
        .is_some_and(|options| {
            let address = (options.get_host(), options.get_port());
            address
                .to_socket_addrs()
                .ok()
                .into_iter()
                .flatten()
                .any(|address| TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok())
        });
    if reachable {
        return None;
    }
    let why = format!("no PostgreSQL answers at {url} (set CHAT_TEST_POSTGRES_URL)");
    if std::env::var("CHAT_TEST_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
        panic!("{why}, and CHAT_TEST_REQUIRE_POSTGRES=1");
    }
    Some(why)
}

/// A schema of its own for one test, dropped with everything in it when the value is.
#[derive(Debug)]
pub struct TestSchema {
    /// The database URL.
    pub url: String,
    /// The schema's name: `chat_test_` and a random suffix.
    pub name: String,
}

impl TestSchema {
    pub fn new() -> Self {
        Self {
            url: test_url(),
            name: format!("chat_test_{}", uuid::Uuid::now_v7().simple()),
        }
    }
}

impl Default for TestSchema {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestSchema {
    /// Drops the schema from a thread of its own: `Drop` cannot await, and may run inside a
    /// runtime.
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let options = PgConnectOptions::from_str(&url).ok()?;
                let mut c = options.connect().await.ok()?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{name}\" CASCADE"
                )))
                .execute(&mut c)
                .await
                .ok()?;
                c.close().await.ok()
            })
        });
        let _ = dropped.join();
    }
}
