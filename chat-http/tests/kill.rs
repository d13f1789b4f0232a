//! `kill -9` of `chat-server` under a send load, on SQLite, sled and PostgreSQL: after a
//! restart, every message that was answered with a 2xx is there, and the room's sequence has
//! no gap.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use common::{Acked, Client, Server};
use reqwest::Method;
use serde_json::json;

async fn survives_kill_9(database: &str, flags: &[&str]) {
    let server = Server::start_with(database, flags);
    let client = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let (token, _) = client.signup("writer").await;
    let room = client.room(&token, "load").await;

    let acked: Arc<Acked> = Arc::default();
    let never = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for i in 0..4 {
        let (client, token, room, acked, never) = (
            client.clone(),
            token.clone(),
            room.clone(),
            Arc::clone(&acked),
            Arc::clone(&never),
        );
        senders.push(tokio::spawn(async move {
            let label = i.to_string();
            client
                .send_until_gone(&token, &room, &label, &acked, &never)
                .await;
        }));
    }
    while acked.lock().unwrap().len() < 300 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut server = server;
    server.child.kill().unwrap(); // SIGKILL
    server.child.wait().unwrap();
    for sender in senders {
        sender.await.unwrap();
    }

    let restarted = Server::start_with(database, flags);
    let client = Client {
        http: reqwest::Client::new(),
        base: restarted.base.clone(),
    };
    let login = json!({ "username": "writer", "password": "writer-password" });
    let (_, login) = client
        .call(Method::POST, "/auth/login", None, Some(login))
        .await;
    let token = login["access_token"].as_str().unwrap().to_owned();
    let acked = acked.lock().unwrap().clone();
    for (id, seq) in &acked {
        let (status, message) = client
            .call(
                Method::GET,
                &format!("/rooms/{room}/messages/{id}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(
            status, 200,
            "acknowledged message {id} was lost on {database}"
        );
        assert_eq!(message["seq"].as_u64(), Some(*seq));
    }
    let (_, room_now) = client
        .call(Method::GET, &format!("/rooms/{room}"), Some(&token), None)
        .await;
    let last_seq = room_now["last_seq"].as_u64().unwrap();
    let mut after = 0;
    while after < last_seq {
        let (_, page) = client
            .call(
                Method::GET,
                &format!("/rooms/{room}/messages?after={after}&limit=200"),
                Some(&token),
                None,
            )
            .await;
        for message in page["items"].as_array().unwrap() {
            after += 1;
            assert_eq!(
                message["seq"].as_u64(),
                Some(after),
                "gap in the sequence on {database}"
            );
        }
    }
    assert!(last_seq >= acked.len() as u64);
    restarted.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    survives_kill_9(
        &format!("sqlite://{}", dir.path().join("chat.db").display()),
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    survives_kill_9(
        &format!("sled://{}", dir.path().join("sled").display()),
        &[],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_loses_nothing_acknowledged() {
    use chat_store_postgres::testing::{TestSchema, postgres_missing};
    if let Some(why) = postgres_missing() {
        return chat_core::testing::skipped("postgres_loses_nothing_acknowledged", &why);
    }
    let schema = TestSchema::new();
    survives_kill_9(&schema.url, &["--postgres-schema", &schema.name]).await;
}
