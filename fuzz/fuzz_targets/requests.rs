//! Fuzzes request parsing and validation: arbitrary bodies and query strings against the
//! routes that parse them. The server must answer every one with a status below 500.
//!
//! Run with `cargo +nightly fuzz run requests` from the repository root.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Method, Request, header};
use chat_core::store::MemoryStore;
use chat_core::{Chat, NewRoom, NewUser};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct Target {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
    paths: Vec<(Method, String)>,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let mut config = chat_core::testing::test_config();
        config.failed_logins_allowed = 0;
        let chat = Chat::builder(Arc::new(MemoryStore::new()))
            .config(config)
            .build()
            .unwrap();
        let chat = Arc::new(chat);
        let (token, room, user) = runtime.block_on(async {
            let user = chat.register(NewUser::named("fuzz"), "fuzz-password").await.unwrap();
            let room = chat.create_room(user.id, NewRoom::named("fuzz")).await.unwrap();
            let login = chat
                .login(chat_core::auth::LoginName::Username("fuzz".into()), "fuzz-password")
                .await
                .unwrap();
            (login.tokens.access_token, room.id, user.id)
        });
        let mut limits = chat_http::Limits::default();
        limits.auth_attempts_per_ip = 0;
        limits.sends_per_second_per_user = 0;
        let router = chat_http::ChatHttp::new(chat).limits(limits).router();
        let paths = vec![
            (Method::POST, format!("/api/v1/rooms/{room}/messages")),
            (Method::POST, "/api/v1/auth/register".to_owned()),
            (Method::POST, "/api/v1/auth/login".to_owned()),
            (Method::PATCH, "/api/v1/users/me".to_owned()),
            (Method::POST, "/api/v1/rooms".to_owned()),
            (Method::POST, format!("/api/v1/direct/{user}/messages")),
            (Method::GET, format!("/api/v1/rooms/{room}/messages")),
        ];
        Target { runtime, router, token, paths }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let target = target();
    let (method, path) = &target.paths[usize::from(selector) % target.paths.len()];
    // The first line (if any) is the query string; the rest is the body.
    let (query, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (&[][..], rest),
    };
    let query: String = query.iter().filter(|b| b.is_ascii_alphanumeric() || b"=&%._-".contains(b)).map(|&b| char::from(b)).collect();
    let Ok(request) = Request::builder()
        .method(method.clone())
        .uri(format!("{path}?{query}"))
        .header(header::AUTHORIZATION, format!("Bearer {}", target.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_vec()))
    else {
        return;
    };
    let response = target.runtime.block_on(target.router.clone().oneshot(request)).unwrap();
    assert!(response.status().as_u16() < 500, "{method} {path}: {}", response.status());
});
