//! Several servers on one store and one bus, over real sockets: whichever server a request or
//! a WebSocket lands on, the user sees one chat.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use common::App;
use common::ws::{connect, expect_frame, next_frame, open};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

async fn ticket(app: &App, token: &str) -> String {
    let ticket = app.post("/auth/ws-ticket", token, json!({})).await;
    assert_eq!(ticket.status, StatusCode::OK, "{}", ticket.body);
    ticket.body["ticket"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_on_one_store_behave_as_one() {
    let servers = App::cluster(3);
    let (a, b, c) = (&servers[0], &servers[1], &servers[2]);
    let bases = [a.serve().await, b.serve().await, c.serve().await];
    let (alice, alice_id) = a.signup("alice").await;
    let (bob, _) = b.signup("bob").await;
    let room = a.room(&alice, json!({ "name": "general" })).await;
    c.join(&room, &bob).await;

    // A ticket from one server opens a socket on another, once.
    let bobs_ticket = ticket(a, &bob).await;
    let mut bob_on_b = connect(&bases[1], None, Some(&bobs_ticket)).await;
    assert!(open(&bases[0], None, Some(&bobs_ticket)).await.is_err());
    let mut alice_on_a = connect(&bases[0], Some(&alice), None).await;
    let mut alice_on_c = connect(&bases[2], Some(&alice), None).await;

    // Online as every server sees it.
    let seen = b.get(&format!("/users/{alice_id}"), &bob).await;
    assert_eq!(seen.body["online"], true, "{}", seen.body);

    // Sent through any server, delivered on every server, in order, once.
    for (i, server) in servers.iter().enumerate() {
        server.send(&room, &alice, &format!("via {i}")).await;
    }
    for socket in [&mut bob_on_b, &mut alice_on_a, &mut alice_on_c] {
        for seq in 1..=3 {
            let frame = expect_frame(socket, "message.created").await;
            assert_eq!(frame["message"]["seq"], seq);
        }
    }

    // A logout on B closes that login's sockets on A and C.
    b.call(Method::POST, "/auth/logout", Some(&alice), None)
        .await;
    for socket in [&mut alice_on_a, &mut alice_on_c] {
        assert_eq!(expect_frame(socket, "closed").await["code"], 4001);
    }
    assert!(open(&bases[0], Some(&alice), None).await.is_err());

    // A ticket asked for before a logout opens nothing after it, on any server.
    let (carol, _) = c.signup("carol").await;
    let carols_ticket = ticket(c, &carol).await;
    a.call(Method::POST, "/auth/logout", Some(&carol), None)
        .await;
    assert!(open(&bases[1], None, Some(&carols_ticket)).await.is_err());

    // Wrong passwords spread over the servers share one budget.
    for server in servers.iter().cycle().take(5) {
        let wrong = server
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(json!({ "username": "bob", "password": "wrong password" })),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let locked = c
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "username": "bob", "password": "bob-password" })),
        )
        .await;
    assert_eq!(locked.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_replayed_refresh_token_closes_its_logins_sockets_everywhere() {
    let servers = App::cluster(2);
    let base = servers[0].serve().await;
    let (_, _) = servers[0].signup("alice").await;
    let login = servers[1]
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(json!({ "username": "alice", "password": "alice-password" })),
        )
        .await;
    let access = login.body["access_token"].as_str().unwrap();
    let refresh = login.body["refresh_token"].as_str().unwrap();
    let mut socket = connect(&base, Some(access), None).await;
    let refresh_body = json!({ "refresh_token": refresh });
    let first = servers[1]
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(refresh_body.clone()),
        )
        .await;
    assert_eq!(first.status, StatusCode::OK);
    let replay = servers[1]
        .call(Method::POST, "/auth/refresh", None, Some(refresh_body))
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expect_frame(&mut socket, "closed").await["code"], 4001);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_sends_without_reading_is_dropped() {
    let mut limits = common::open_limits();
    limits.ws_max_backlog_bytes = 256 * 1024;
    let app = App::with_limits(limits);
    let base = app.serve().await;
    let (token, _) = app.signup("flood").await;
    let room = app.room(&token, json!({ "name": "echo" })).await;
    let mut socket = connect(&base, Some(&token), None).await;
    // Every send is answered with an ack carrying the 15 000-character message; the client
    // reads none of them.
    let body = "z".repeat(15_000);
    const SENDS: usize = 2_000;
    let flood = async {
        for i in 0..SENDS {
            let frame =
                json!({ "type": "send", "room_id": room, "body": body, "txn_id": format!("t{i}") });
            if socket.send(Message::text(frame.to_string())).await.is_err() {
                return i;
            }
        }
        SENDS
    };
    let sent = tokio::time::timeout(Duration::from_secs(30), flood)
        .await
        .expect("the server keeps reading (or drops the connection) rather than stalling");
    let mut acks = 0;
    loop {
        let frame = next_frame(&mut socket, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("still open after {sent} sends and {acks} acks read"));
        match frame["type"].as_str() {
            Some("ack") => acks += 1,
            Some("closed") => break,
            _ => {}
        }
    }
    assert!(acks < SENDS, "dropped before every send was answered");
    // The server itself is fine.
    assert_eq!(app.get("/users/me", &token).await.status, StatusCode::OK);
}
