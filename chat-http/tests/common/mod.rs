//! A test client for the router: requests through `oneshot`, no socket.
#![allow(dead_code, clippy::unwrap_used)] // shared by several test binaries; unwraps fail the test

pub mod ws;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chat_core::store::MemoryStore;
use chat_core::{Chat, ChatConfig};
use chat_http::{ChatHttp, Limits};
use serde_json::{Value, json};
use tower::ServiceExt;

pub struct App {
    pub router: Router,
    pub chat: Arc<Chat>,
}

/// A response: status, headers and JSON body (`Value::Null` when empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

/// Limits for tests: no rate limits unless a test sets them.
pub fn open_limits() -> Limits {
    let mut limits = Limits::default();
    limits.auth_attempts_per_ip = 0;
    limits.sends_per_second_per_user = 0;
    limits
}

/// The engine's settings for tests: cheap hashing, no failed-login lockout unless a test sets
/// one.
pub fn open_config() -> ChatConfig {
    chat_core::testing::test_config().with_failed_logins_allowed(0)
}

impl App {
    pub fn new() -> Self {
        Self::with_limits(open_limits())
    }

    pub fn with_limits(limits: Limits) -> Self {
        Self::with(limits, open_config())
    }

    pub fn with(limits: Limits, config: ChatConfig) -> Self {
        let chat = Chat::builder(Arc::new(MemoryStore::new()))
            .config(config)
            .build()
            .unwrap();
        let chat = Arc::new(chat);
        let router = ChatHttp::new(Arc::clone(&chat)).limits(limits).router();
        Self { router, chat }
    }

    /// `count` servers on one store and one bus, as several processes on one database, with
    /// the default failed-login lockout (5 per account).
    pub fn cluster(count: usize) -> Vec<Self> {
        let store: Arc<dyn chat_core::store::Store> = Arc::new(MemoryStore::new());
        let bus: Arc<dyn chat_core::events::EventBus> =
            Arc::new(chat_core::events::InProcessBus::default());
        (0..count)
            .map(|_| {
                let chat = Chat::builder(Arc::clone(&store))
                    .config(chat_core::testing::test_config())
                    .bus(Arc::clone(&bus))
                    .build()
                    .unwrap();
                let chat = Arc::new(chat);
                let router = ChatHttp::new(Arc::clone(&chat))
                    .limits(open_limits())
                    .router();
                Self { router, chat }
            })
            .collect()
    }

    /// Serves the router on a free loopback port, as chat-server does; its `host:port`.
    pub async fn serve(&self) -> String {
        self.serve_with(chat_http::ConnectionLimits::default())
            .await
    }

    /// [`App::serve`] with these connection limits.
    pub async fn serve_with(&self, limits: chat_http::ConnectionLimits) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = listener.local_addr().unwrap().to_string();
        let router = self.router.clone();
        let forever = std::future::pending();
        tokio::spawn(chat_http::serve(listener, router, limits, forever));
        base
    }

    pub async fn raw(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("/api/v1{path}"));
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = match body {
            Some(body) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string())),
            None => request.body(Body::empty()),
        };
        self.raw(request.unwrap()).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Registers and logs in; the access token and the user id.
    pub async fn signup(&self, username: &str) -> (String, String) {
        let password = format!("{username}-password");
        let registered = self
            .call(
                Method::POST,
                "/auth/register",
                None,
                Some(json!({ "username": username, "password": password })),
            )
            .await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.body
        );
        let login = self
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({ "username": username, "password": password })),
            )
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.body);
        (
            login.body["access_token"].as_str().unwrap().to_owned(),
            login.body["user"]["id"].as_str().unwrap().to_owned(),
        )
    }

    /// A public room owned by `token`'s user; its id.
    pub async fn room(&self, token: &str, body: Value) -> String {
        let created = self.post("/rooms", token, body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
        created.body["id"].as_str().unwrap().to_owned()
    }

    /// `token`'s user joins the public room `room`.
    pub async fn join(&self, room: &str, token: &str) {
        let path = format!("/rooms/{room}/join");
        let joined = self.post(&path, token, json!({})).await;
        assert_eq!(joined.status, StatusCode::OK, "{}", joined.body);
    }

    /// `token`'s user sends `body` to `room`; the message as the answer shows it.
    pub async fn send(&self, room: &str, token: &str, body: &str) -> Value {
        let path = format!("/rooms/{room}/messages");
        let sent = self.post(&path, token, json!({ "body": body })).await;
        assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
        sent.body
    }
}

/// The `chat-server` binary on a free port.
pub struct Server {
    pub child: std::process::Child,
    pub base: String,
}

impl Server {
    /// Starts it on `database` (with rate limits off, so tests may hammer it).
    pub fn start(database: &str) -> Self {
        Self::start_with(database, &[])
    }

    /// Starts it on `database` with more flags.
    pub fn start_with(database: &str, flags: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
            .args(["--bind", "127.0.0.1:0", "--database", database])
            .args(["--auth-per-minute", "0", "--sends-per-second", "0"])
            .args(flags)
            .env("CHAT_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("the server prints its address")
                .unwrap();
            if let Some(rest) = line.strip_prefix("chat-server listening on ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        Self { child, base }
    }

    /// SIGTERM, then the exit status of a graceful shutdown.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Server {
    /// A test that fails halfway leaves no server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Messages acknowledged by a server: (id, seq), in the order the answers came.
pub type Acked = std::sync::Mutex<Vec<(String, u64)>>;

/// A JSON client of a running server.
#[derive(Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Creates a public room named `name`; its id.
    pub async fn room(&self, token: &str, name: &str) -> String {
        let body = json!({ "name": name });
        let (status, room) = self
            .call(reqwest::Method::POST, "/rooms", Some(token), Some(body))
            .await;
        assert_eq!(status, 201, "{room}");
        room["id"].as_str().unwrap().to_owned()
    }

    /// `token`'s user joins the public room `room`.
    pub async fn join(&self, room: &str, token: &str) {
        let path = format!("/rooms/{room}/join");
        let joined = self.call(reqwest::Method::POST, &path, Some(token), Some(json!({})));
        let (status, body) = joined.await;
        assert_eq!(status, 200, "{body}");
    }

    /// `token`'s user sends `body` to `room`; the message as the answer shows it.
    pub async fn send(&self, room: &str, token: &str, body: &str) -> Value {
        let (path, body) = (format!("/rooms/{room}/messages"), json!({ "body": body }));
        let sent = self.call(reqwest::Method::POST, &path, Some(token), Some(body));
        let (status, message) = sent.await;
        assert_eq!(status, 201, "{message}");
        message
    }

    /// Sends `LABEL:N` messages to `room` until the server is gone, answers other than 2xx, or
    /// `stop` is set; records each acknowledged one.
    pub async fn send_until_gone(
        &self,
        token: &str,
        room: &str,
        label: &str,
        acked: &Acked,
        stop: &std::sync::atomic::AtomicBool,
    ) {
        let url = format!("{}/api/v1/rooms/{room}/messages", self.base);
        for n in 0.. {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let body = json!({ "body": format!("{label}:{n}") });
            let sent = self
                .http
                .post(&url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await;
            let Ok(response) = sent else { break }; // the server is gone
            if !response.status().is_success() {
                break;
            }
            let Ok(message) = response.json::<Value>().await else {
                break;
            };
            let id = message["id"].as_str().unwrap().to_owned();
            let seq = message["seq"].as_u64().unwrap();
            acked.lock().unwrap().push((id, seq));
        }
    }

    pub async fn signup(&self, name: &str) -> (String, String) {
        let body = json!({ "username": name, "password": format!("{name}-password") });
        let (status, _) = self
            .call(
                reqwest::Method::POST,
                "/auth/register",
                None,
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 201);
        let (status, login) = self
            .call(reqwest::Method::POST, "/auth/login", None, Some(body))
            .await;
        assert_eq!(status, 200);
        (
            login["access_token"].as_str().unwrap().to_owned(),
            login["user"]["id"].as_str().unwrap().to_owned(),
        )
    }
}
