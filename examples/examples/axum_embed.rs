//! axum-embed: mount the chat API inside an existing axum application, beside the host's own
//! routes, with the host's own authentication deciding who the acting user is. It serves on a
//! free port, sends itself a few requests, and exits.
//!
//! Run it with `cargo run -p examples --example axum_embed`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::request::Parts;
use axum::routing::get;
use chat_core::store::MemoryStore;
use chat_core::{Chat, NewUser};
use chat_http::{Actor, ApiError, Authenticator, ChatHttp};
use serde_json::{Value, json};

/// The host's authentication: here a gateway sets `x-host-user` after checking the host's own
/// session; the host maps it to the chat user it created for that account.
struct HostAuth;

#[async_trait]
impl Authenticator for HostAuth {
    async fn authenticate(&self, chat: &Chat, request: &Parts) -> Result<Actor, ApiError> {
        let account = request
            .headers
            .get("x-host-user")
            .and_then(|value| value.to_str().ok())
            .ok_or_else(ApiError::unauthenticated)?;
        let user = chat
            .user_by_username(account)
            .await
            .map_err(|_| ApiError::unauthenticated())?
            .ok_or_else(ApiError::unauthenticated)?;
        Ok(Actor {
            user_id: user.id,
            session_id: None,
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let chat = Arc::new(Chat::new(Arc::new(MemoryStore::new())));
    for account in ["ada", "grace"] {
        chat.create_user(NewUser::named(account)).await?;
    }

    // The host's application: its own routes, and the chat under /api/v1.
    let app = axum::Router::new()
        .route("/", get(|| async { "the host's home page" }))
        .merge(
            ChatHttp::new(Arc::clone(&chat))
                .authenticator(HostAuth)
                .router(),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let http = reqwest::Client::new();
    let home = http.get(format!("{base}/")).send().await?.text().await?;
    println!("GET / -> {home}");

    // Ada, as the host authenticated her, creates a room and posts.
    let as_ada = |request: reqwest::RequestBuilder| request.header("x-host-user", "ada");
    let room: Value = as_ada(http.post(format!("{base}/api/v1/rooms")))
        .json(&json!({ "name": "lab notes" }))
        .send()
        .await?
        .json()
        .await?;
    let room_id = room["id"].as_str().ok_or("no room id")?;
    let posted = as_ada(http.post(format!("{base}/api/v1/rooms/{room_id}/messages")))
        .json(&json!({ "body": "the engine runs" }))
        .send()
        .await?;
    println!("POST message as ada -> {}", posted.status());

    // Grace joins the public room and reads it.
    let as_grace = |request: reqwest::RequestBuilder| request.header("x-host-user", "grace");
    let joined = as_grace(http.post(format!("{base}/api/v1/rooms/{room_id}/join")))
        .send()
        .await?;
    let history: Value = as_grace(http.get(format!("{base}/api/v1/rooms/{room_id}/messages")))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "grace joins ({}) and reads: {}",
        joined.status(),
        history["items"][0]["body"]
    );

    // Without the host's header there is no acting user.
    let anonymous = http.get(format!("{base}/api/v1/users/me")).send().await?;
    println!("anonymous GET /users/me -> {}", anonymous.status());
    assert_eq!(anonymous.status(), 401);
    Ok(())
}
