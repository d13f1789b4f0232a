//! A test client for the router: requests through `oneshot`, no socket.
#![allow(dead_code, clippy::unwrap_used)] // shared by several test binaries; unwraps fail the test

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chat_core::Chat;
use chat_core::store::MemoryStore;
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
    limits.failed_logins_per_account = 0;
    limits.sends_per_second_per_user = 0;
    limits
}

impl App {
    pub fn new() -> Self {
        Self::with_limits(open_limits())
    }

    pub fn with_limits(limits: Limits) -> Self {
        let chat = Chat::builder(Arc::new(MemoryStore::new()))
            .config(chat_core::testing::test_config())
            .build()
            .unwrap();
        let chat = Arc::new(chat);
        let router = ChatHttp::new(Arc::clone(&chat)).limits(limits).router();
        Self { router, chat }
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
}
