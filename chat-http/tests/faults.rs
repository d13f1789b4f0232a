//! Faults and load over real sockets: concurrent senders, retried transaction ids, oversized
//! frames, slow WebSocket readers, deleted rooms.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::App;
use common::ws::{self, Socket, next_frame};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// The app served on a free loopback port; its `host:port`.
async fn serve(app: &App) -> String {
    app.serve().await
}

/// A socket with a bearer token.
async fn connect(base: &str, token: &str) -> Socket {
    ws::connect(base, Some(token), None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_clients_sending_two_hundred_each_keep_one_gapless_order() {
    const CLIENTS: usize = 8;
    const EACH: usize = 200;
    let app = App::new();
    let base = serve(&app).await;
    let (owner, _) = app.signup("owner").await;
    let room = app.room(&owner, json!({ "name": "busy" })).await;
    let mut watcher = connect(&base, &owner).await;
    let http = reqwest::Client::new();
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (token, _) = app.signup(&format!("client{i}")).await;
        app.join(&room, &token).await;
        let (http, base, room) = (http.clone(), base.clone(), room.clone());
        clients.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for j in 0..EACH {
                let sent: Value = http
                    .post(format!("http://{base}/api/v1/rooms/{room}/messages"))
                    .bearer_auth(&token)
                    .json(&json!({ "body": format!("{i}:{j}") }))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                seqs.push(sent["seq"].as_u64().unwrap());
            }
            seqs
        }));
    }
    for client in clients {
        let seqs = client.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a client's own order is kept"
        );
    }

    // History: 1..=1600, and each client's messages in its order.
    let mut history = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get(
                &format!("/rooms/{room}/messages?after={after}&limit=200"),
                &owner,
            )
            .await;
        let items = page.body["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        after = items.last().unwrap()["seq"].as_u64().unwrap();
        history.extend(items);
    }
    let seqs: Vec<u64> = history.iter().map(|m| m["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, (1..=(CLIENTS * EACH) as u64).collect::<Vec<_>>());
    let mut next: HashMap<String, usize> = HashMap::new();
    for message in &history {
        let (client, j) = message["body"].as_str().unwrap().split_once(':').unwrap();
        let expected = next.entry(client.to_owned()).or_default();
        assert_eq!(j.parse::<usize>().unwrap(), *expected);
        *expected += 1;
    }

    // The subscriber saw the same messages in the same order.
    let mut live = Vec::new();
    while live.len() < CLIENTS * EACH {
        let frame = next_frame(&mut watcher, Duration::from_secs(10))
            .await
            .expect("live frames");
        match frame["type"].as_str() {
            Some("message.created") => live.push(frame["message"]["seq"].as_u64().unwrap()),
            Some("resync") => panic!("the watcher fell behind"),
            _ => {}
        }
    }
    assert_eq!(live, seqs);
}

#[tokio::test]
async fn a_transaction_id_retried_concurrently_stores_one_message() {
    let app = App::new();
    let base = serve(&app).await;
    let (token, _) = app.signup("alice").await;
    let room = app.room(&token, json!({ "name": "r" })).await;
    let http = reqwest::Client::new();
    let url = format!("http://{base}/api/v1/rooms/{room}/messages");
    let sends = (0..8).map(|_| {
        let request = http
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "body": "once", "txn_id": "retry-1" }));
        tokio::spawn(async move { request.send().await.unwrap() })
    });
    let mut statuses = Vec::new();
    let mut ids = Vec::new();
    for send in sends.collect::<Vec<_>>() {
        let response = send.await.unwrap();
        statuses.push(response.status().as_u16());
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 201]);
    assert!(ids.windows(2).all(|w| w[0] == w[1]));
    let other = app
        .post(
            &format!("/rooms/{room}/messages"),
            &token,
            json!({ "body": "twice", "txn_id": "retry-1" }),
        )
        .await;
    assert_eq!(other.status.as_u16(), 409);
    let history = app.get(&format!("/rooms/{room}/messages"), &token).await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_oversized_frame_closes_the_socket_with_1009() {
    let app = App::new();
    let base = serve(&app).await;
    let (token, _) = app.signup("alice").await;
    let mut socket = connect(&base, &token).await;
    let huge = json!({ "type": "send", "room_id": uuid_zero(), "body": "x".repeat(70 * 1024) });
    let _ = socket.send(Message::text(huge.to_string())).await;
    let closed = next_frame(&mut socket, Duration::from_secs(5))
        .await
        .expect("a close");
    assert_eq!(
        (closed["type"].as_str(), closed["code"].as_u64()),
        (Some("closed"), Some(1009)),
        "a close frame saying the message was too big: {closed}"
    );
}

fn uuid_zero() -> &'static str {
    "00000000-0000-0000-0000-000000000000"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_reads_slows_no_one_and_is_told_to_resync() {
    let app = App::new();
    let base = serve(&app).await;
    let (alice, _) = app.signup("alice").await;
    let (bob, _) = app.signup("bob").await;
    let (slow, _) = app.signup("slow").await;
    let room = app.room(&alice, json!({ "name": "firehose" })).await;
    for token in [&bob, &slow] {
        app.join(&room, token).await;
    }
    let mut slow_socket = connect(&base, &slow).await;
    let mut bob_socket = connect(&base, &bob).await;

    // 6 000 messages of 4 KiB: far more than the socket buffers and the 4 096-event bus hold.
    let body = "y".repeat(4096);
    let started = Instant::now();
    let sender = {
        let (chat, room) = (app.chat.clone(), room.clone());
        let alice_id = app.get("/users/me", &alice).await.body["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        tokio::spawn(async move {
            // About 5 000 messages a second: a busy room, not a flood no reader could follow.
            for i in 0..6000 {
                let new = chat_core::NewMessage::text(body.clone());
                chat.send(alice_id, room.parse().unwrap(), new)
                    .await
                    .unwrap();
                if i % 50 == 49 {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        })
    };
    // Bob keeps up while the slow socket reads nothing.
    let mut received = 0;
    while received < 6000 {
        let frame = next_frame(&mut bob_socket, Duration::from_secs(20))
            .await
            .expect("bob keeps receiving");
        match frame["type"].as_str() {
            Some("message.created") => received += 1,
            Some("resync") => panic!("bob, who reads, fell behind"),
            Some("closed") => panic!("bob, who reads, was dropped"),
            _ => {}
        }
    }
    sender.await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));

    // Now the slow one reads: it is told to resync (or was closed), never handed everything.
    let mut saw_resync = false;
    let mut messages = 0;
    while let Some(frame) = next_frame(&mut slow_socket, Duration::from_secs(2)).await {
        match frame["type"].as_str() {
            Some("resync") | Some("closed") => {
                saw_resync = true;
                break;
            }
            Some("message.created") => messages += 1,
            _ => {}
        }
    }
    assert!(
        saw_resync,
        "the slow socket got {messages} messages and no resync"
    );
}

#[tokio::test]
async fn deleting_a_room_ends_its_stream() {
    let app = App::new();
    let base = serve(&app).await;
    let (alice, _) = app.signup("alice").await;
    let (bob, _) = app.signup("bob").await;
    let room = app.room(&alice, json!({ "name": "short-lived" })).await;
    app.join(&room, &bob).await;
    let mut socket = connect(&base, &bob).await;
    app.delete(&format!("/rooms/{room}"), &alice).await;
    loop {
        let frame = next_frame(&mut socket, Duration::from_secs(5))
            .await
            .expect("room.deleted");
        if frame["type"] == "room.deleted" {
            break;
        }
    }
    let again = app.room(&alice, json!({ "name": "after" })).await;
    app.post(
        &format!("/rooms/{again}/messages"),
        &alice,
        json!({ "body": "not for bob" }),
    )
    .await;
    assert!(
        next_frame(&mut socket, Duration::from_millis(300))
            .await
            .is_none()
    );
    assert_eq!(
        app.get(&format!("/rooms/{room}/messages"), &bob)
            .await
            .status
            .as_u16(),
        404
    );
}

#[tokio::test]
async fn typing_frames_are_rate_limited_like_sends() {
    let mut limits = common::open_limits();
    limits.sends_per_second_per_user = 1;
    limits.send_burst = 3;
    let app = App::with_limits(limits);
    let base = serve(&app).await;
    let (token, _) = app.signup("chatty").await;
    let room = app.room(&token, json!({ "name": "typing" })).await;
    let mut socket = connect(&base, &token).await;
    let typing = json!({ "type": "typing", "room_id": room }).to_string();
    for _ in 0..20 {
        socket.send(Message::text(typing.clone())).await.unwrap();
    }
    let mut limited = 0;
    while let Some(frame) = next_frame(&mut socket, Duration::from_millis(500)).await {
        if frame["type"] == "error" && frame["error"]["code"] == "rate_limited" {
            limited += 1;
        }
        assert_ne!(frame["type"], "closed");
    }
    assert!(limited >= 15, "{limited} of 20 typing frames refused");
}
