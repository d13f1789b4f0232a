//! Over real sockets: the `chat-server` binary started as the README says, and live delivery
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test
//! over WebSocket.

mod common;

use std::time::Duration;

use common::ws::{connect, expect_frame, next_frame};
use common::{App, Client, Server};
use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn the_binary_serves_a_whole_conversation() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("chat.db").display());
    let server = Server::start(&database);
    let client = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let health = client
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // A person gets the chat client at the root, guarded against injected scripts.
    let page = client.http.get(&server.base).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-testid=\"composer\"")
    );
    let script = client.http.get(format!("{}/web/app.js", server.base));
    let script = script.send().await.unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );

    let (alice, alice_id) = client.signup("alice").await;
    let (bob, _) = client.signup("bob").await;
    let room = client.room(&alice, "general").await;
    client.join(&room, &bob).await;
    let posted = client.send(&room, &alice, "hello bob").await;
    assert_eq!(posted["seq"], 1);
    let (_, history) = client
        .call(
            Method::GET,
            &format!("/rooms/{room}/messages"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(history["items"][0]["body"], "hello bob");
    let (status, _) = client
        .call(
            Method::POST,
            &format!("/direct/{alice_id}/messages"),
            Some(&bob),
            Some(json!({ "body": "hi alice" })),
        )
        .await;
    assert_eq!(status, 201);
    let (_, unread) = client
        .call(Method::GET, "/unread", Some(&alice), None)
        .await;
    assert_eq!(unread["total"], 1);
    let direct_room = unread["rooms"][0]["room_id"].as_str().unwrap().to_owned();
    let (_, marked) = client
        .call(
            Method::POST,
            &format!("/rooms/{direct_room}/read"),
            Some(&alice),
            Some(json!({ "seq": 1 })),
        )
        .await;
    assert_eq!(marked["unread"], 0);
    let (_, unread) = client
        .call(Method::GET, "/unread", Some(&alice), None)
        .await;
    assert_eq!(unread["total"], 0);
    let metrics = client
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("chat_messages_sent_total 2")
    );

    let status = server.stop();
    assert!(status.success(), "graceful shutdown on SIGTERM: {status:?}");
}

#[tokio::test]
async fn websockets_deliver_to_members_only() {
    let app = App::new();
    let base = app.serve().await;

    let (alice, _) = app.signup("alice").await;
    let (bob, _) = app.signup("bob").await;
    let (carol, _) = app.signup("carol").await;
    let room = app.room(&alice, json!({ "name": "general" })).await;
    app.join(&room, &bob).await;

    let mut bob_socket = connect(&base, Some(&bob), None).await;
    let ticket = app.post("/auth/ws-ticket", &carol, json!({})).await;
    let ticket = ticket.body["ticket"].as_str().unwrap().to_owned();
    let mut carol_socket = connect(&base, None, Some(&ticket)).await;
    let mut alice_socket = connect(&base, Some(&alice), None).await;
    let used =
        tokio_tungstenite::connect_async(format!("ws://{base}/api/v1/events?ticket={ticket}"))
            .await;
    assert!(used.is_err(), "a ticket opens one socket only");

    // Sent over REST, it reaches the other member.
    app.send(&room, &alice, "over REST").await;
    let event = expect_frame(&mut bob_socket, "message.created").await;
    assert_eq!(event["message"]["body"], "over REST");

    // Sent over the socket: acknowledged to the sender, delivered to the other member.
    let send = json!({ "type": "send", "room_id": room, "body": "over WS", "txn_id": "w1" });
    bob_socket
        .send(Message::text(send.to_string()))
        .await
        .unwrap();
    let ack = expect_frame(&mut bob_socket, "ack").await;
    assert_eq!(
        (ack["txn_id"].as_str(), ack["message"]["seq"].as_u64()),
        (Some("w1"), Some(2))
    );
    // Alice hears of her own REST message first, then of Bob's.
    let own = expect_frame(&mut alice_socket, "message.created").await;
    assert_eq!(own["message"]["body"], "over REST");
    let event = expect_frame(&mut alice_socket, "message.created").await;
    assert_eq!(event["message"]["body"], "over WS");
    let stored = app
        .get(
            &format!(
                "/rooms/{room}/messages/{}",
                ack["message"]["id"].as_str().unwrap()
            ),
            &alice,
        )
        .await;
    assert_eq!(
        stored.body["body"], "over WS",
        "an ack means the message is stored"
    );

    // Errors are frames; the socket stays open.
    let bad = json!({ "type": "send", "room_id": room, "body": "", "txn_id": "w2" });
    bob_socket
        .send(Message::text(bad.to_string()))
        .await
        .unwrap();
    let error = expect_frame(&mut bob_socket, "error").await;
    assert_eq!(
        (error["txn_id"].as_str(), error["error"]["code"].as_str()),
        (Some("w2"), Some("invalid"))
    );
    bob_socket.send(Message::text("not json")).await.unwrap();
    assert_eq!(
        expect_frame(&mut bob_socket, "error").await["error"]["code"],
        "malformed"
    );
    bob_socket
        .send(Message::text(r#"{"type":"ping"}"#))
        .await
        .unwrap();
    expect_frame(&mut bob_socket, "pong").await;

    // Typing reaches the other member as an event.
    let typing = json!({ "type": "typing", "room_id": room });
    bob_socket
        .send(Message::text(typing.to_string()))
        .await
        .unwrap();
    let seen = expect_frame(&mut alice_socket, "typing").await;
    assert_eq!(seen["typing"], true);

    // Carol, not a member, heard nothing of the room.
    while let Some(frame) = next_frame(&mut carol_socket, Duration::from_millis(300)).await {
        assert!(frame["message"].is_null(), "a non-member received {frame}");
    }

    // Removed from the room, Bob stops receiving its messages at once.
    let bob_id = app.get("/users/me", &bob).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.delete(&format!("/rooms/{room}/members/{bob_id}"), &alice)
        .await;
    expect_frame(&mut bob_socket, "member.left").await;
    app.send(&room, &alice, "after bob").await;
    while let Some(frame) = next_frame(&mut bob_socket, Duration::from_millis(300)).await {
        assert_ne!(frame["message"]["body"], "after bob");
    }

    // Logging out closes the socket.
    app.call(axum::http::Method::POST, "/auth/logout", Some(&alice), None)
        .await;
    assert_eq!(
        expect_frame(&mut alice_socket, "closed").await["type"],
        "closed"
    );
}

#[tokio::test]
async fn reactions_reach_members_live() {
    let app = App::new();
    let base = app.serve().await;
    let (alice, alice_id) = app.signup("alice").await;
    let (bob, _) = app.signup("bob").await;
    let room = app.room(&alice, json!({ "name": "general" })).await;
    app.join(&room, &bob).await;
    let mut bob_socket = connect(&base, Some(&bob), None).await;
    let sent = app.send(&room, &alice, "lunch?").await;
    let message = sent["id"].as_str().unwrap();
    expect_frame(&mut bob_socket, "message.created").await;

    let pizza = format!("/rooms/{room}/messages/{message}/reactions/%F0%9F%8D%95");
    app.put(&pizza, &alice, json!(null)).await;
    let added = expect_frame(&mut bob_socket, "reaction.added").await;
    // An edit's frame does not claim the message lost them: events carry no reactions.
    let edit = format!("/rooms/{room}/messages/{message}");
    app.patch(&edit, &alice, json!({ "body": "lunch at 1?" }))
        .await;
    let edited = expect_frame(&mut bob_socket, "message.updated").await;
    assert!(edited["message"].get("reactions").is_none());
    let reaction = &added["reaction"];
    assert_eq!(
        (
            reaction["message_id"].as_str(),
            reaction["user_id"].as_str(),
            reaction["key"].as_str(),
            reaction["seq"].as_u64(),
        ),
        (Some(message), Some(alice_id.as_str()), Some("🍕"), Some(1))
    );
    app.delete(&pizza, &alice).await;
    let removed = expect_frame(&mut bob_socket, "reaction.removed").await;
    assert_eq!(removed["reaction"]["key"], "🍕");
    assert!(
        removed["reaction"]["change_id"].as_u64() > reaction["change_id"].as_u64(),
        "each change moves the message along the change feed"
    );
}

#[tokio::test]
async fn thread_replies_and_mentions_travel_over_the_socket() {
    let app = App::new();
    let base = app.serve().await;
    let (alice, alice_id) = app.signup("alice").await;
    let (bob, _) = app.signup("bob").await;
    let room = app.room(&alice, json!({ "name": "general" })).await;
    app.join(&room, &bob).await;
    let root = app.send(&room, &alice, "plans?").await;
    let root = root["id"].as_str().unwrap().to_owned();
    let mut alice_socket = connect(&base, Some(&alice), None).await;
    let mut bob_socket = connect(&base, Some(&bob), None).await;

    let send = json!({
        "type": "send", "room_id": room, "body": "friday", "txn_id": "t1",
        "thread_root": root, "mentions": [alice_id],
    });
    bob_socket
        .send(Message::text(send.to_string()))
        .await
        .unwrap();
    let ack = expect_frame(&mut bob_socket, "ack").await;
    assert_eq!(ack["message"]["thread_root"], root.as_str());
    let event = expect_frame(&mut alice_socket, "message.created").await;
    assert_eq!(
        (
            &event["message"]["thread_root"],
            &event["message"]["mentions"]
        ),
        (&json!(root), &json!([alice_id]))
    );
    // A member may not mention the whole room: an error frame, the socket stays.
    let everyone = json!({
        "type": "send", "room_id": room, "body": "all", "txn_id": "t2", "mentions_room": true,
    });
    bob_socket
        .send(Message::text(everyone.to_string()))
        .await
        .unwrap();
    let error = expect_frame(&mut bob_socket, "error").await;
    assert_eq!(
        (error["txn_id"].as_str(), error["error"]["code"].as_str()),
        (Some("t2"), Some("forbidden"))
    );
}
