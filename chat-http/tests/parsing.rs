//! Property tests of the request parsing and validation paths (the fuzz target in `fuzz/`
//! explores the same paths without bounds): whatever the body or query, the answer is a
//! response with a JSON error or a success — never a 5xx, never a panic.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, Request, header};
use common::App;
use proptest::prelude::*;
use serde_json::json;

/// Bodies that are mostly almost-right JSON, plus arbitrary bytes.
fn bodies() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        "\\PC{0,200}".prop_map(String::into_bytes),
        (
            any::<String>(),
            proptest::option::of(any::<String>()),
            any::<i64>()
        )
            .prop_map(|(body, txn, n)| {
                json!({ "body": body, "txn_id": txn, "seq": n, "limit": n })
                    .to_string()
                    .into_bytes()
            }),
        ("[a-z_]{1,12}", any::<String>())
            .prop_map(|(key, value)| format!("{{\"{key}\": {value:?}}}").into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_body_or_query_makes_the_server_fail(body in bodies(), query in "[A-Za-z0-9=&%._~+-]{0,40}", route in 0..6usize) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let app = App::new();
            let (token, user) = app.signup("prop").await;
            let room = app.room(&token, json!({ "name": "r" })).await;
            let (method, path) = [
                (Method::POST, format!("/rooms/{room}/messages")),
                (Method::POST, "/auth/register".to_owned()),
                (Method::POST, "/auth/login".to_owned()),
                (Method::PATCH, "/users/me".to_owned()),
                (Method::POST, format!("/rooms/{room}/read")),
                (Method::POST, format!("/direct/{user}/messages")),
            ][route].clone();
            let request = Request::builder()
                .method(method.clone())
                .uri(format!("/api/v1{path}?{query}"))
                .header(header::AUTHORIZATION, format!("Bearer {token}"))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body))
                .unwrap();
            let reply = app.raw(request).await;
            prop_assert!(reply.status.as_u16() < 500, "{method} {path}: {}", reply.status);
            if reply.status.is_client_error() {
                prop_assert!(reply.body["error"]["code"].is_string(), "{}", reply.body);
            }
            Ok(())
        })?;
    }

    #[test]
    fn history_queries_never_fail(before in any::<Option<u64>>(), after in any::<Option<u64>>(), limit in any::<Option<i64>>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let app = App::new();
            let (token, _) = app.signup("prop").await;
            let room = app.room(&token, json!({ "name": "r" })).await;
            app.post(&format!("/rooms/{room}/messages"), &token, json!({ "body": "x" })).await;
            let mut query = Vec::new();
            if let Some(before) = before { query.push(format!("before={before}")); }
            if let Some(after) = after { query.push(format!("after={after}")); }
            if let Some(limit) = limit { query.push(format!("limit={limit}")); }
            let reply = app.get(&format!("/rooms/{room}/messages?{}", query.join("&")), &token).await;
            prop_assert!(reply.status.as_u16() < 500);
            Ok(())
        })?;
    }
}
