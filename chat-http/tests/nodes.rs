//! Three `chat-server` processes on one PostgreSQL database, each test in a schema of its own,
//! their live events over LISTEN/NOTIFY or NATS: whichever process a request or a socket lands
//! on, the user sees one chat, and killing one process loses nothing it acknowledged. Without
//! PostgreSQL (or NATS) these tests say why they are skipped and pass (see
//! `chat_store_postgres::testing`, `chat_bus_nats::testing`).
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chat_bus_nats::testing::{PrivateServer, nats_missing, test_url as nats_url};
use chat_store_postgres::testing::{TestSchema, postgres_missing};
use common::ws::{Socket, connect, expect_frame, next_frame, open};
use common::{Acked, Client, Server};
use reqwest::Method;
use serde_json::json;

/// How the servers of a test carry live events to each other.
#[derive(Debug, Clone, Copy)]
enum Bus {
    /// LISTEN/NOTIFY, through the database.
    Notify,
    /// The test NATS server.
    Nats,
}

impl Bus {
    /// Why this bus's tests cannot run here, if they cannot.
    fn missing(self) -> Option<String> {
        postgres_missing().or_else(|| match self {
            Bus::Notify => None,
            Bus::Nats => nats_missing(),
        })
    }
}

/// Three servers on a fresh schema, and a client of each.
fn nodes(schema: &TestSchema, bus: Bus) -> Vec<(Server, Client)> {
    let nats = nats_url();
    let mut args = vec!["--postgres-schema", &schema.name];
    if let Bus::Nats = bus {
        args.extend(["--bus", &nats]);
    }
    (0..3)
        .map(|_| {
            let server = Server::start_with(&schema.url, &args);
            let client = Client {
                http: reqwest::Client::new(),
                base: server.base.clone(),
            };
            (server, client)
        })
        .collect()
}

fn host(client: &Client) -> &str {
    client.base.trim_start_matches("http://")
}

async fn ticket(client: &Client, token: &str) -> String {
    let (status, body) = client
        .call(
            Method::POST,
            "/auth/ws-ticket",
            Some(token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["ticket"].as_str().unwrap().to_owned()
}

/// The `message.created` frames of a socket until `count` have come: (seq, change_id).
async fn messages(socket: &mut Socket, count: usize) -> Vec<(u64, u64)> {
    let mut seen = Vec::new();
    while seen.len() < count {
        let frame = expect_frame(socket, "message.created").await;
        let message = &frame["message"];
        seen.push((
            message["seq"].as_u64().unwrap(),
            message["change_id"].as_u64().unwrap(),
        ));
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_one_database_behave_as_one() {
    behave_as_one(Bus::Notify).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_one_database_behave_as_one_over_nats() {
    behave_as_one(Bus::Nats).await;
}

async fn behave_as_one(bus: Bus) {
    if let Some(why) = bus.missing() {
        return chat_core::testing::skipped("three_processes", &why);
    }
    let schema = TestSchema::new();
    let nodes = nodes(&schema, bus);
    let [(_, a), (_, b), (_, c)] = &nodes[..] else {
        unreachable!()
    };
    let (alice, alice_id) = a.signup("alice").await;
    let (bob, _) = b.signup("bob").await;
    let room = a.room(&alice, "general").await;
    c.join(&room, &bob).await;

    // A ticket asked for on A opens a socket on B, once.
    let bobs_ticket = ticket(a, &bob).await;
    let mut bob_on_b = connect(host(b), None, Some(&bobs_ticket)).await;
    assert!(open(host(c), None, Some(&bobs_ticket)).await.is_err());
    let mut alice_on_a = connect(host(a), Some(&alice), None).await;
    let mut alice_on_c = connect(host(c), Some(&alice), None).await;

    // Online wherever the user is connected, as every process sees it.
    for client in [a, b, c] {
        let (_, seen) = client
            .call(Method::GET, &format!("/users/{alice_id}"), Some(&bob), None)
            .await;
        assert_eq!(seen["online"], true, "{seen}");
    }

    // Sent at once through all three, delivered on each socket in sequence order, once.
    let mut senders = Vec::new();
    for (i, client) in [a, b, c].into_iter().enumerate() {
        let (http, base, token, room) = (
            client.http.clone(),
            client.base.clone(),
            alice.clone(),
            room.clone(),
        );
        senders.push(tokio::spawn(async move {
            let client = Client { http, base };
            for j in 0..20 {
                let body = json!({ "body": format!("{i}:{j}") });
                let path = format!("/rooms/{room}/messages");
                let (status, _) = client
                    .call(Method::POST, &path, Some(&token), Some(body))
                    .await;
                assert_eq!(status, 201);
            }
        }));
    }
    for sender in senders {
        sender.await.unwrap();
    }
    let all: Vec<u64> = (1..=60).collect();
    for socket in [&mut bob_on_b, &mut alice_on_a, &mut alice_on_c] {
        let seqs: Vec<u64> = messages(socket, 60).await.iter().map(|m| m.0).collect();
        assert_eq!(seqs, all);
        // Nothing more: no message twice.
        while let Some(frame) = next_frame(socket, Duration::from_millis(300)).await {
            assert_ne!(frame["type"], "message.created", "{frame}");
        }
    }

    // A logout on B closes that login's sockets on A and C.
    b.call(Method::POST, "/auth/logout", Some(&alice), None)
        .await;
    for socket in [&mut alice_on_a, &mut alice_on_c] {
        assert_eq!(expect_frame(socket, "closed").await["code"], 4001);
    }
    assert!(open(host(a), Some(&alice), None).await.is_err());

    // Wrong passwords spread over the processes share one budget.
    for client in [a, b, c].into_iter().cycle().take(5) {
        let wrong = json!({ "username": "bob", "password": "wrong password" });
        let (status, _) = client
            .call(Method::POST, "/auth/login", None, Some(wrong))
            .await;
        assert_eq!(status, 401);
    }
    let right = json!({ "username": "bob", "password": "bob-password" });
    let (status, _) = c.call(Method::POST, "/auth/login", None, Some(right)).await;
    assert_eq!(status, 429);

    for (server, _) in nodes {
        assert!(server.stop().success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_process_loses_nothing_and_its_clients_catch_up_elsewhere() {
    kill_one(Bus::Notify).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_one_process_loses_nothing_and_its_clients_catch_up_elsewhere_over_nats() {
    kill_one(Bus::Nats).await;
}

async fn kill_one(bus: Bus) {
    if let Some(why) = bus.missing() {
        return chat_core::testing::skipped("kill_one_process", &why);
    }
    let schema = TestSchema::new();
    let mut nodes = nodes(&schema, bus);
    let (writer, _) = nodes[1].1.signup("writer").await;
    let (reader, _) = nodes[2].1.signup("reader").await;
    let room = nodes[1].1.room(&writer, "load").await;
    let join = format!("/rooms/{room}/join");
    nodes[2]
        .1
        .call(Method::POST, &join, Some(&reader), Some(json!({})))
        .await;

    // The reader listens on the process that will die.
    let mut socket = connect(host(&nodes[0].1), Some(&reader), None).await;

    // Writers on every process, until their process is gone or they are told to stop.
    let acked: Arc<Acked> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for (i, (_, client)) in nodes.iter().enumerate() {
        let (client, token, room, acked, stop) = (
            client.clone(),
            writer.clone(),
            room.clone(),
            Arc::clone(&acked),
            Arc::clone(&stop),
        );
        senders.push(tokio::spawn(async move {
            let label = i.to_string();
            client
                .send_until_gone(&token, &room, &label, &acked, &stop)
                .await;
        }));
    }
    // The reader has seen some; then its process is killed (SIGKILL) mid-load.
    let before = messages(&mut socket, 30).await;
    let (mut dead, _) = nodes.remove(0);
    dead.child.kill().unwrap();
    dead.child.wait().unwrap();
    // It reconnects to another process, then catches up from the last cursor it saw.
    let survivor = &nodes[0].1;
    let mut socket = connect(host(survivor), Some(&reader), None).await;
    let cursor = before.last().unwrap().1;
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for sender in senders {
        sender.await.unwrap();
    }
    let mut caught_up = Vec::new();
    let mut since = cursor;
    loop {
        let path = format!("/rooms/{room}/changes?since={since}&limit=200");
        let (status, page) = survivor.call(Method::GET, &path, Some(&reader), None).await;
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        caught_up.extend(items.iter().map(|m| m["seq"].as_u64().unwrap()));
        since = page["next_cursor"].as_u64().unwrap();
        if page["has_more"] != true {
            break;
        }
    }
    let (_, now) = survivor
        .call(Method::GET, &format!("/rooms/{room}"), Some(&reader), None)
        .await;
    let last_seq = now["last_seq"].as_u64().unwrap();

    // Every acknowledged message is there, under the sequence number it was given.
    let acked = acked.lock().unwrap().clone();
    assert!(!acked.is_empty());
    for (id, seq) in &acked {
        let (status, message) = survivor
            .call(
                Method::GET,
                &format!("/rooms/{room}/messages/{id}"),
                Some(&reader),
                None,
            )
            .await;
        assert_eq!((status, message["seq"].as_u64()), (200, Some(*seq)), "{id}");
    }
    // What the reader saw before, what it caught up on and what arrived live after
    // reconnecting: each message once in each, together every sequence number, no gap.
    let mut views: BTreeMap<u64, usize> = BTreeMap::new();
    for (seq, _) in &before {
        *views.entry(*seq).or_default() += 1;
    }
    let mut live = Vec::new();
    while let Some(frame) = next_frame(&mut socket, Duration::from_millis(500)).await {
        if frame["type"] == "message.created" {
            live.push(frame["message"]["seq"].as_u64().unwrap());
        }
    }
    for part in [&caught_up, &live] {
        let mut unique = part.clone();
        unique.dedup();
        assert_eq!(&unique, part, "a message twice in one view");
    }
    let all: std::collections::BTreeSet<u64> = views
        .keys()
        .chain(&caught_up)
        .chain(&live)
        .copied()
        .collect();
    assert_eq!(all, (1..=last_seq).collect(), "a gap after catching up");
    assert!(views.values().all(|n| *n == 1));
    for (server, _) in nodes {
        assert!(server.stop().success());
    }
}

/// A TCP relay in front of PostgreSQL that can be cut: what a database restart looks like from
/// the server (connections dropped, new ones refused), without touching the database other
/// tests use.
struct Relay {
    port: u16,
    up: Arc<std::sync::atomic::AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Relay {
    async fn start(target: (String, u16)) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let (accepting, cuts) = (Arc::clone(&up), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accepting.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // refused: dropped at once
                }
                let target = target.clone();
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    /// Drops every connection and refuses new ones for `down`.
    async fn outage(&self, down: Duration) {
        self.up.store(false, std::sync::atomic::Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
        tokio::time::sleep(down).await;
        self.up.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_answers_503_and_the_server_recovers_by_itself() {
    if let Some(why) = postgres_missing() {
        return chat_core::testing::skipped("database_outage", &why);
    }
    let schema = TestSchema::new();
    let options: sqlx::postgres::PgConnectOptions = schema.url.parse().unwrap();
    let target = (options.get_host().to_owned(), options.get_port());
    let relay = Relay::start(target).await;
    let url = format!(
        "postgres://{}@127.0.0.1:{}/{}",
        options.get_username(),
        relay.port,
        options.get_database().unwrap_or("test")
    );
    let server = Server::start_with(&url, &["--postgres-schema", &schema.name]);
    let client = Client {
        http: reqwest::Client::new(),
        base: server.base.clone(),
    };
    let (token, _) = client.signup("writer").await;
    let room = client.room(&token, "load").await;
    let path = format!("/rooms/{room}/messages");

    // Sends before, during and after an outage of 2 s.
    let writer = {
        let (http, base, token, path) = (
            client.http.clone(),
            client.base.clone(),
            token.clone(),
            path.clone(),
        );
        tokio::spawn(async move {
            let client = Client { http, base };
            let mut answers = Vec::new();
            for i in 0..150 {
                let body = json!({ "body": format!("m{i}") });
                let (status, message) = client
                    .call(Method::POST, &path, Some(&token), Some(body))
                    .await;
                answers.push((status, message));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    relay.outage(Duration::from_secs(2)).await;
    let answers = writer.await.unwrap();

    let statuses: std::collections::BTreeSet<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(
        statuses,
        [201, 503].into(),
        "successes and clear 503s, never a 500"
    );
    assert_eq!(answers.last().unwrap().0, 201, "recovered by itself");
    let health = client
        .http
        .get(format!("{}/healthz", client.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Nothing acknowledged was lost.
    for (_, message) in answers.iter().filter(|a| a.0 == 201) {
        let id = message["id"].as_str().unwrap();
        let (status, stored) = client
            .call(Method::GET, &format!("{path}/{id}"), Some(&token), None)
            .await;
        assert_eq!(
            (status, stored["seq"].as_u64()),
            (200, message["seq"].as_u64())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_under_load_loses_nothing_and_health_says_so() {
    if let Some(why) = Bus::Nats.missing() {
        return chat_core::testing::skipped("nats_restarted", &why);
    }
    let mut nats = PrivateServer::start().expect("nats-server starts beside the test NATS");
    let schema = TestSchema::new();
    let args = ["--postgres-schema", &schema.name, "--bus", &nats.url];
    let servers: Vec<Server> = (0..2)
        .map(|_| Server::start_with(&schema.url, &args))
        .collect();
    let [a, b] = [0, 1].map(|i| Client {
        http: reqwest::Client::new(),
        base: servers[i].base.clone(),
    });
    let (writer, _) = a.signup("writer").await;
    let (reader, _) = b.signup("reader").await;
    let room = a.room(&writer, "load").await;
    let join = format!("/rooms/{room}/join");
    b.call(Method::POST, &join, Some(&reader), Some(json!({})))
        .await;
    let mut socket = connect(host(&b), Some(&reader), None).await;
    let health = |client: &Client| {
        let url = format!("{}/healthz", client.base);
        let http = client.http.clone();
        async move {
            let response = http.get(url).send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    assert_eq!(health(&a).await.0, 200);

    // The writer sends 90 messages on A; NATS is away for the middle 30.
    let path = format!("/rooms/{room}/messages");
    for i in 0..90 {
        if i == 30 {
            nats.stop();
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while health(&a).await != (503, "event bus unavailable".into()) {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "healthz tells the outage"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        if i == 60 {
            assert!(nats.resume(), "NATS starts again");
        }
        let body = json!({ "body": format!("{i}") });
        let (status, _) = a.call(Method::POST, &path, Some(&writer), Some(body)).await;
        assert_eq!(status, 201, "acknowledged whatever the bus does");
    }

    // The reader on B, as a client does: live frames, and on `resync` the change feed from
    // the last change seen. Together: every message, none missed.
    let mut seen = std::collections::BTreeSet::new();
    let (mut cursor, mut resyncs) = (0, 0);
    while seen.len() < 90 {
        let frame = next_frame(&mut socket, Duration::from_secs(10)).await;
        let frame = frame.unwrap_or_else(|| panic!("stuck with {} of 90", seen.len()));
        match frame["type"].as_str() {
            Some("message.created") => {
                seen.insert(frame["message"]["seq"].as_u64().unwrap());
                cursor = cursor.max(frame["message"]["change_id"].as_u64().unwrap());
            }
            Some("resync") => {
                resyncs += 1;
                let path = format!("/rooms/{room}/changes?since={cursor}&limit=200");
                let (status, page) = b.call(Method::GET, &path, Some(&reader), None).await;
                assert_eq!(status, 200, "{page}");
                for message in page["items"].as_array().unwrap() {
                    seen.insert(message["seq"].as_u64().unwrap());
                }
                cursor = page["next_cursor"].as_u64().unwrap();
            }
            _ => {}
        }
    }
    assert_eq!(
        seen,
        (1..=90).collect(),
        "every acknowledged message reached the reader"
    );
    assert!(resyncs > 0, "the outage reached the reader as a resync");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while health(&a).await.0 != 200 || health(&b).await.0 != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "both reconnect by themselves"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for server in servers {
        assert!(server.stop().success());
    }
}
