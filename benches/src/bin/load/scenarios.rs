//! The scenarios, each bounded in time and count.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::store::Store;
use chat_core::{Chat, HashCost, NewRoom, NewUser, RoomId, UserId};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::server::Running;
use crate::{Plan, Row};

type Failure = Box<dyn std::error::Error>;
const PASSWORD: &str = "load-password";

/// What `prepare` put in the database.
struct Seeded {
    send_room: RoomId,
    /// One room per WebSocket sender, so that what is measured is the send, not a fan-out.
    ws_rooms: Vec<RoomId>,
    fan_room: RoomId,
    history_rooms: Vec<(u64, RoomId)>,
}

/// Users, rooms and histories, written through the library before the server starts.
/// Passwords are hashed cheaply so that logging in thousands of users takes seconds; the
/// server verifies each hash with the cost recorded in it.
async fn prepare(store: Arc<dyn Store>, plan: &Plan) -> Result<Seeded, Failure> {
    let config = chat_core::ChatConfig::default().with_password_hashing(HashCost::insecure_fast());
    let chat = Chat::builder(Arc::clone(&store)).config(config).build()?;
    let register = async |name: String| -> Result<UserId, Failure> {
        Ok(chat.register(NewUser::named(name), PASSWORD).await?.id)
    };
    let owner = register("owner".into()).await?;
    let send_room = chat.create_room(owner, NewRoom::named("send")).await?.id;
    let senders = plan.send_connections.iter().max().unwrap_or(&1);
    let mut ws_rooms = Vec::new();
    for i in 0..*senders
        .max(&plan.nodes_send_connections)
        .max(&plan.ws_send_connections)
    {
        let sender = register(format!("sender{i}")).await?;
        chat.join_room(sender, send_room, None).await?;
        if i < plan.ws_send_connections {
            let room = NewRoom::named(format!("ws {i}"));
            ws_rooms.push(chat.create_room(sender, room).await?.id);
        }
    }
    let fan_room = chat.create_room(owner, NewRoom::named("fanout")).await?.id;
    let fans = plan
        .fanout_subscribers
        .iter()
        .chain(&plan.nodes_subscribers)
        .max();
    for i in 0..*fans.unwrap_or(&1) {
        let fan = register(format!("fan{i}")).await?;
        chat.join_room(fan, fan_room, None).await?;
    }
    register("idle".into()).await?;
    let mut history_rooms = Vec::new();
    for &size in &plan.history_rooms {
        let room = chat
            .create_room(owner, NewRoom::named(format!("history {size}")))
            .await?;
        seed_history(&chat, &store, owner, room.id, size).await?;
        history_rooms.push((size, room.id));
    }
    Ok(Seeded {
        send_room,
        ws_rooms,
        fan_room,
        history_rooms,
    })
}

/// `size` messages from 16 concurrent senders, straight into the store (faster than `Chat`).
async fn seed_history(
    chat: &Chat,
    store: &Arc<dyn Store>,
    owner: UserId,
    room: RoomId,
    size: u64,
) -> Result<(), Failure> {
    let room = chat.room(owner, room).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..16u64 {
        let (store, room) = (Arc::clone(store), room.clone());
        tasks.spawn(async move {
            for n in (task..size).step_by(16) {
                let message = benches::new_message(&room, owner, n);
                store.append_message(&message).await?;
            }
            Ok::<_, chat_core::StoreError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(())
}

/// Prepares a fresh database of `store`, starts the server on it, runs every scenario.
pub async fn run_all(
    binary: &std::path::PathBuf,
    store: &str,
    plan: &Plan,
    scenarios: &[String],
) -> Result<Vec<Row>, Failure> {
    let dir = tempfile::tempdir()?;
    let started = Instant::now();
    // A PostgreSQL schema of the run's own, dropped at the end like the temp dir.
    let schema = chat_store_postgres::testing::TestSchema::new();
    let mut flags = Vec::new();
    let (database, seeded) = match store {
        "sqlite" => {
            let path = dir.path().join("chat.db");
            let options = chat_store_sqlite::SqliteOptions::new(&path.to_string_lossy())?
                .durability(chat_store_sqlite::Durability::Normal);
            let opened = Arc::new(chat_store_sqlite::SqliteStore::open_with(options).await?);
            let seeded = prepare(opened, plan).await?;
            (format!("sqlite://{}", path.display()), seeded)
        }
        "sled" => {
            let path = dir.path().join("sled");
            let location = path.to_string_lossy().to_string();
            let durability = chat_store_sled::Durability::Background;
            let opened =
                Arc::new(chat_store_sled::SledStore::open_with(&location, durability).await?);
            let seeded = prepare(Arc::clone(&opened) as Arc<dyn Store>, plan).await?;
            opened.flush().await?;
            drop(opened);
            (format!("sled://{location}"), seeded)
        }
        // `postgres+nats`: the same, with live events between servers over NATS (at
        // `CHAT_TEST_NATS_URL`) instead of LISTEN/NOTIFY.
        "postgres" | "postgres+nats" => {
            let options =
                chat_store_postgres::PostgresOptions::new(&schema.url)?.schema(&schema.name);
            let opened = chat_store_postgres::PostgresStore::open_with(options).await?;
            let seeded = prepare(Arc::new(opened.clone()), plan).await?;
            opened.close().await;
            flags = vec!["--postgres-schema".to_owned(), schema.name.clone()];
            if store == "postgres+nats" {
                let nats = chat_bus_nats::testing::test_url();
                flags.extend(["--bus".to_owned(), nats]);
            }
            (schema.url.clone(), seeded)
        }
        other => return Err(format!("unknown store {other}").into()),
    };
    eprintln!("   prepared in {:.1} s", started.elapsed().as_secs_f64());
    // The idle sockets and the scenario's own HTTP connections, within the server's cap.
    let cap = plan.idle_sockets + 1_000;
    flags.extend(["--max-connections".to_owned(), cap.to_string()]);
    let server = Running::start(binary, &database, &flags)?;
    let client = Client::new(&server.base);
    let one = std::slice::from_ref(&client);
    let mut rows = Vec::new();
    for &connections in &plan.send_connections {
        rows.push(send(one, store, &seeded, connections, plan.send_duration).await?);
    }
    if plan.ws_send_connections > 0 {
        rows.push(ws_send(&client, store, &seeded, plan.send_duration).await?);
    }
    for &(size, room) in &seeded.history_rooms {
        rows.push(history(&client, store, room, size, plan.history_duration).await?);
    }
    for &subscribers in &plan.fanout_subscribers {
        rows.push(fanout(one, store, &seeded, subscribers, plan).await?);
    }
    // Several servers on one database (PostgreSQL only): sends and subscribers spread over
    // them, so that every delivery but a third crosses servers through the bus.
    if plan.nodes > 1 && store.starts_with("postgres") {
        let mut servers = Vec::new();
        for _ in 1..plan.nodes {
            servers.push(Running::start(binary, &database, &flags)?);
        }
        let mut clients = vec![client.clone()];
        clients.extend(servers.iter().map(|server| Client::new(&server.base)));
        let connections = plan.nodes_send_connections;
        rows.push(send(&clients, store, &seeded, connections, plan.send_duration).await?);
        for &subscribers in &plan.nodes_subscribers {
            rows.push(fanout(&clients, store, &seeded, subscribers, plan).await?);
        }
    }
    if scenarios.iter().any(|s| s == "connections") {
        rows.push(connections(&client, &server, store, plan.idle_sockets).await?);
    }
    if scenarios.iter().any(|s| s == "auth") {
        // A server of its own, so that what the earlier scenarios left in memory does not
        // count against the idle figure.
        drop(server);
        let server = Running::start(binary, &database, &flags)?;
        let client = Client::new(&server.base);
        rows.extend(auth(&client, &server, store, plan).await?);
    }
    Ok(rows)
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    async fn login(&self, name: &str) -> Result<String, Failure> {
        let body = json!({ "username": name, "password": PASSWORD });
        let reply: Value = self
            .http
            .post(format!("{}/api/v1/auth/login", self.base))
            .json(&body)
            .send()
            .await?
            .json()
            .await?;
        let token = reply["access_token"]
            .as_str()
            .ok_or_else(|| format!("login of {name}: {reply}"))?;
        Ok(token.to_owned())
    }

    /// One `register` or `login` with the load password: how long it took.
    async fn auth(&self, path: &str, name: &str) -> Result<Duration, Failure> {
        let body = json!({ "username": name, "password": "a-strong-password" });
        let sent = Instant::now();
        let response = self
            .http
            .post(format!("{}/api/v1/auth/{path}", self.base))
            .json(&body)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("{path} of {name}: {}", response.status()).into());
        }
        Ok(sent.elapsed())
    }

    async fn socket(&self, token: &str) -> Result<Socket, Failure> {
        let url = format!("{}/api/v1/events", self.base.replacen("http", "ws", 1));
        let mut request = url.into_client_request()?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        // Small frames go out at once, as browsers send them.
        let nodelay = true;
        Ok(
            tokio_tungstenite::connect_async_with_config(request, None, nodelay)
                .await?
                .0,
        )
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Latencies in microseconds; percentiles by sorting (a run holds at most a few 100 000).
#[derive(Default)]
struct Latencies(Vec<u64>);

impl Latencies {
    fn record(&mut self, elapsed: Duration) {
        self.0
            .push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    fn add(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    /// The value at quantile `q` in milliseconds, if any was recorded.
    fn quantile_ms(&mut self, q: f64) -> Option<f64> {
        self.0.sort_unstable();
        let last = self.0.len().checked_sub(1)?;
        let at = ((last as f64) * q).round() as usize;
        Some(self.0[at.min(last)] as f64 / 1000.0)
    }
}

fn row(
    store: &str,
    scenario: String,
    elapsed: Duration,
    latencies: &mut Latencies,
    note: String,
) -> Row {
    Row {
        store: store.to_owned(),
        scenario,
        per_second: Some(latencies.len() as f64 / elapsed.as_secs_f64()),
        p50_ms: latencies.quantile_ms(0.5),
        p99_ms: latencies.quantile_ms(0.99),
        max_ms: latencies.quantile_ms(1.0),
        note,
    }
}

/// `connections` senders posting back to back to one room for `duration`.
/// " over N servers" in a row's name when there are several.
fn over(clients: &[Client]) -> String {
    match clients.len() {
        1 => String::new(),
        n => format!(" over {n} servers"),
    }
}

/// `connections` senders to one room for `duration`, spread over `clients`' servers.
async fn send(
    clients: &[Client],
    store: &str,
    seeded: &Seeded,
    connections: usize,
    duration: Duration,
) -> Result<Row, Failure> {
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();
    for i in 0..connections {
        let client = &clients[i % clients.len()];
        let token = client.login(&format!("sender{i}")).await?;
        let (http, url) = (
            client.http.clone(),
            format!("{}/api/v1/rooms/{}/messages", client.base, seeded.send_room),
        );
        tasks.spawn(async move {
            let mut latencies = Latencies::default();
            let mut failed = 0u64;
            let mut n = 0u64;
            while started.elapsed() < duration {
                let sent = Instant::now();
                let body = json!({ "body": format!("load message {i}:{n}") });
                match http.post(&url).bearer_auth(&token).json(&body).send().await {
                    Ok(response) if response.status().is_success() => {
                        latencies.record(sent.elapsed());
                    }
                    _ => failed += 1,
                }
                n += 1;
            }
            (latencies, failed)
        });
    }
    let mut latencies = Latencies::default();
    let mut failed = 0;
    while let Some(done) = tasks.join_next().await {
        let (task_latencies, task_failed) = done?;
        latencies.add(task_latencies);
        failed += task_failed;
    }
    let elapsed = started.elapsed();
    let note = format!("{} messages, {failed} failed", latencies.len());
    Ok(row(
        store,
        format!("send, {connections} connections{}", over(clients)),
        elapsed,
        &mut latencies,
        note,
    ))
}

/// Sends over WebSockets, one socket per room, each waiting for its ack before the next
/// send: acks per second and the time from a send frame to its ack.
async fn ws_send(
    client: &Client,
    store: &str,
    seeded: &Seeded,
    duration: Duration,
) -> Result<Row, Failure> {
    let mut tasks = tokio::task::JoinSet::new();
    let mut sockets = Vec::new();
    for (i, room) in seeded.ws_rooms.iter().enumerate() {
        let token = client.login(&format!("sender{i}")).await?;
        sockets.push((i, *room, client.socket(&token).await?));
    }
    let started = Instant::now();
    for (i, room, mut socket) in sockets {
        tasks.spawn(async move {
            let mut latencies = Latencies::default();
            let mut n = 0u64;
            while started.elapsed() < duration {
                let txn_id = format!("ws{i}:{n}");
                let frame =
                    json!({ "type": "send", "room_id": room, "body": "load", "txn_id": txn_id });
                let sent = Instant::now();
                if socket
                    .send(Message::Text(frame.to_string().into()))
                    .await
                    .is_err()
                {
                    break;
                }
                // The sender's own message.created may come before or after the ack.
                let acked = loop {
                    match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
                        Ok(Some(Ok(Message::Text(text)))) => {
                            let reply: Value = serde_json::from_str(&text).unwrap_or_default();
                            if reply["txn_id"] == txn_id.as_str() {
                                break reply["type"] == "ack";
                            }
                        }
                        Ok(Some(Ok(_))) => {}
                        _ => break false,
                    }
                };
                if !acked {
                    break;
                }
                latencies.record(sent.elapsed());
                n += 1;
            }
            latencies
        });
    }
    let mut latencies = Latencies::default();
    while let Some(done) = tasks.join_next().await {
        latencies.add(done?);
    }
    let elapsed = started.elapsed();
    let note = format!("{} acks, each socket to its own room", latencies.len());
    let name = format!("WebSocket send, {} sockets", seeded.ws_rooms.len());
    Ok(row(store, name, elapsed, &mut latencies, note))
}

/// Newest-50 history pages of a room of `size` messages, 4 readers, for `duration`.
async fn history(
    client: &Client,
    store: &str,
    room: RoomId,
    size: u64,
    duration: Duration,
) -> Result<Row, Failure> {
    let token = client.login("owner").await?;
    let url = format!("{}/api/v1/rooms/{room}/messages?limit=50", client.base);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, url, token) = (client.http.clone(), url.clone(), token.clone());
        tasks.spawn(async move {
            let mut latencies = Latencies::default();
            while started.elapsed() < duration {
                let sent = Instant::now();
                let page: Value = http
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .json()
                    .await?;
                if page["items"].as_array().map(Vec::len) != Some(50.min(size as usize)) {
                    return Err(format!("unexpected page {page}").into());
                }
                latencies.record(sent.elapsed());
            }
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(latencies)
        });
    }
    let mut latencies = Latencies::default();
    while let Some(done) = tasks.join_next().await {
        latencies.add(done?.map_err(|e| e.to_string())?);
    }
    let note = format!("room of {size} messages");
    Ok(row(
        store,
        format!("history, {size} messages"),
        started.elapsed(),
        &mut latencies,
        note,
    ))
}

/// `subscribers` sockets in one room while a member posts `rate` messages a second: delivery
/// latency from send to each receipt, and whether everyone got everything once, in order.
/// `subscribers` sockets on one room, spread over `clients`' servers, and messages at
/// `fanout_rate` sent through each server in turn: delivery latency, loss and order.
async fn fanout(
    clients: &[Client],
    store: &str,
    seeded: &Seeded,
    subscribers: usize,
    plan: &Plan,
) -> Result<Row, Failure> {
    let total = (plan.fanout_rate as f64 * plan.fanout_duration.as_secs_f64()) as usize;
    let mut sockets = Vec::new();
    for i in 0..subscribers {
        let client = &clients[i % clients.len()];
        let token = client.login(&format!("fan{i}")).await?;
        sockets.push(client.socket(&token).await?);
    }
    let mut readers = tokio::task::JoinSet::new();
    for mut socket in sockets {
        readers.spawn(async move {
            let mut received: Vec<(usize, Instant)> = Vec::new();
            while received.len() < total {
                match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        let frame: Value = serde_json::from_str(&text).unwrap_or_default();
                        let body = frame["message"]["body"].as_str().unwrap_or_default();
                        if let Some(i) = body.strip_prefix("fan:").and_then(|i| i.parse().ok()) {
                            received.push((i, Instant::now()));
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    _ => break,
                }
            }
            received
        });
    }
    let speaker = clients[0].login("owner").await?;
    let interval = Duration::from_secs_f64(1.0 / f64::from(plan.fanout_rate));
    let mut sent_at = Vec::with_capacity(total);
    let started = Instant::now();
    for i in 0..total {
        tokio::time::sleep_until((started + interval * i as u32).into()).await;
        sent_at.push(Instant::now());
        let client = &clients[i % clients.len()];
        let url = format!("{}/api/v1/rooms/{}/messages", client.base, seeded.fan_room);
        let response = client
            .http
            .post(&url)
            .bearer_auth(&speaker)
            .json(&json!({ "body": format!("fan:{i}") }))
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(format!("fan-out send failed: {}", response.status()).into());
        }
    }
    let mut latencies = Latencies::default();
    let (mut complete, mut in_order) = (0, 0);
    while let Some(done) = readers.join_next().await {
        let received = done?;
        let order: Vec<usize> = received.iter().map(|(i, _)| *i).collect();
        complete += usize::from(received.len() == total);
        in_order += usize::from(order == (0..total).collect::<Vec<_>>());
        for (i, at) in received {
            if let Some(sent) = sent_at.get(i) {
                latencies.record(at.duration_since(*sent));
            }
        }
    }
    let note = format!(
        "{subscribers} subscribers × {total} messages at {}/s: {complete} got all, {in_order} exactly once in order",
        plan.fanout_rate
    );
    Ok(row(
        store,
        format!("fan-out, {subscribers} subscribers{}", over(clients)),
        started.elapsed(),
        &mut latencies,
        note,
    ))
}

/// `count` idle authenticated sockets: the server's resident memory per socket.
async fn connections(
    client: &Client,
    server: &Running,
    store: &str,
    count: usize,
) -> Result<Row, Failure> {
    let token = client.login("idle").await?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = server.rss_kib().unwrap_or_default();
    let started = Instant::now();
    let mut sockets = Vec::with_capacity(count);
    for _ in 0..count {
        sockets.push(client.socket(&token).await?);
    }
    let opened = started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = server.rss_kib().unwrap_or_default();
    let per_socket = after.saturating_sub(before) as f64 / count as f64;
    drop(sockets);
    Ok(Row {
        store: store.to_owned(),
        scenario: format!("connections, {count} idle sockets"),
        per_second: Some(count as f64 / opened.as_secs_f64()),
        p50_ms: None,
        p99_ms: None,
        max_ms: None,
        note: format!("server RSS {before} → {after} KiB: {per_socket:.1} KiB per socket"),
    })
}

/// Registrations, then logins, per second (Argon2id at the server's default cost): one client
/// each, then logins from `auth_clients` at once; then the server's resident memory once it
/// has been idle for a moment (`hashing` bounds Argon2's memory while it runs; what matters
/// afterwards is that it is given back).
async fn auth(
    client: &Client,
    server: &Running,
    store: &str,
    plan: &Plan,
) -> Result<Vec<Row>, Failure> {
    let rss_at_start = server.rss_kib().unwrap_or_default();
    let mut rows = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let started = Instant::now();
    let mut latencies = Latencies::default();
    while started.elapsed() < plan.auth_duration {
        let name = format!("newcomer{}", names.len());
        latencies.record(client.auth("register", &name).await?);
        names.push(name);
    }
    let note = "one client, Argon2id 19 MiB × 2".to_owned();
    let elapsed = started.elapsed();
    rows.push(row(
        store,
        "auth: register".into(),
        elapsed,
        &mut latencies,
        note,
    ));

    let started = Instant::now();
    let mut latencies = Latencies::default();
    for name in names.iter().cycle() {
        if started.elapsed() >= plan.auth_duration {
            break;
        }
        latencies.record(client.auth("login", name).await?);
    }
    let note = "one client".to_owned();
    let elapsed = started.elapsed();
    rows.push(row(
        store,
        "auth: login".into(),
        elapsed,
        &mut latencies,
        note,
    ));

    let names = Arc::new(names);
    let started = Instant::now();
    let tasks: Vec<_> = (0..plan.auth_clients)
        .map(|k| {
            let (client, names) = (client.clone(), Arc::clone(&names));
            let duration = plan.login_burst;
            tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut refused = 0u64;
                let mut i = k;
                while started.elapsed() < duration {
                    match client.auth("login", &names[i % names.len()]).await {
                        Ok(took) => latencies.record(took),
                        Err(_) => refused += 1,
                    }
                    i += 1;
                }
                (latencies, refused)
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut refused = 0;
    for task in tasks {
        let (more, more_refused) = task.await?;
        latencies.add(more);
        refused += more_refused;
    }
    let elapsed = started.elapsed();
    let peak = server.rss_kib().unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.rss_kib().unwrap_or_default();
    let note = format!(
        "{} clients for {:.1} s, {refused} refused (429); server RSS {} MiB at start, {} MiB \
         at the end, {} MiB idle 2 s later",
        plan.auth_clients,
        plan.login_burst.as_secs_f64(),
        rss_at_start / 1024,
        peak / 1024,
        idle / 1024
    );
    let scenario = format!("auth: login × {}", plan.auth_clients);
    rows.push(row(store, scenario, elapsed, &mut latencies, note));
    Ok(rows)
}
