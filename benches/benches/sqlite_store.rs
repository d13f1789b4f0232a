//! `SqliteStore` against raw sqlx on the same machine, in the same run, at the same durability
//! (WAL, `synchronous=FULL`).
//!
//! - `send/*`: appends per second. Baselines: raw inserts of the same rows into an equivalent
//!   table, one per transaction and 100 per transaction. The store with 1 sender and with 64
//!   concurrent senders (group commit).
//! - `read/*`: a newest-50 history page and an unread count in rooms of 1 000 and 1 000 000
//!   messages: the large room must cost the same as the small one.
//!
//! Run: `cargo bench -p benches --bench sqlite_store`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::store::{MessageStore, NewStoredMessage, Store};
use chat_core::{Chat, MessageId, NewRoom, NewUser, Page, Room, UserId};
use chat_store_sqlite::SqliteStore;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection};
use tempfile::TempDir;
use tokio::runtime::Runtime;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A store in a temp dir with an engine, a room and `senders` members.
struct Fixture {
    dir: TempDir,
    store: Arc<SqliteStore>,
    chat: Chat,
    room: Room,
    senders: Vec<UserId>,
}

async fn fixture(senders: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    let store = Arc::new(
        SqliteStore::open(&path.to_string_lossy())
            .await
            .expect("open"),
    );
    let chat = Chat::new(Arc::clone(&store) as Arc<dyn Store>).expect("engine");
    let owner = chat
        .create_user(NewUser::named("owner"))
        .await
        .expect("user");
    let room = chat
        .create_room(owner.id, NewRoom::named("bench"))
        .await
        .expect("room");
    let mut ids = vec![owner.id];
    for i in 1..senders {
        let user = chat
            .create_user(NewUser::named(format!("sender{i}")))
            .await
            .expect("user");
        chat.join_room(user.id, room.id, None).await.expect("join");
        ids.push(user.id);
    }
    Fixture {
        dir,
        store,
        chat,
        room,
        senders: ids,
    }
}

fn new_message(room: &Room, sender: UserId, n: u64) -> NewStoredMessage {
    NewStoredMessage {
        id: MessageId(uuid::Uuid::now_v7()),
        room_id: room.id,
        sender,
        body: format!("message number {n} of the benchmark"),
        reply_to: None,
        txn_id: None,
        metadata: None,
        created_at: chrono_now(),
    }
}

fn chrono_now() -> chrono::DateTime<chrono::Utc> {
    chat_core::clock::Clock::now(&chat_core::clock::SystemClock)
}

/// A raw connection to a table shaped like the store's messages table, same pragmas.
async fn raw_table(dir: &TempDir) -> SqliteConnection {
    let mut connection = SqliteConnectOptions::new()
        .filename(dir.path().join("raw.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await
        .expect("raw connection");
    for statement in [
        "CREATE TABLE messages (room_id BLOB NOT NULL, seq INTEGER NOT NULL, \
         id BLOB NOT NULL UNIQUE, sender BLOB NOT NULL, body TEXT NOT NULL, reply_to BLOB, \
         txn_id TEXT, metadata TEXT, created_at INTEGER NOT NULL, edited_at INTEGER, \
         deleted_at INTEGER, change_id INTEGER NOT NULL, PRIMARY KEY (room_id, seq)) WITHOUT ROWID",
        "CREATE UNIQUE INDEX by_txn ON messages (sender, txn_id) WHERE txn_id IS NOT NULL",
        "CREATE INDEX by_change ON messages (room_id, change_id)",
    ] {
        sqlx::query(statement)
            .execute(&mut connection)
            .await
            .expect("raw schema");
    }
    connection
}

async fn raw_insert(connection: &mut SqliteConnection, message: &NewStoredMessage, seq: u64) {
    sqlx::query(
        "INSERT INTO messages (room_id, seq, id, sender, body, created_at, change_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(message.room_id.0)
    .bind(seq as i64)
    .bind(message.id.0)
    .bind(message.sender.0)
    .bind(&message.body)
    .bind(message.created_at.timestamp_micros())
    .bind(seq as i64)
    .execute(connection)
    .await
    .expect("raw insert");
}

async fn raw_inserts(
    connection: &mut SqliteConnection,
    fixture: &Fixture,
    next: &mut u64,
    rows: u64,
    per_tx: u64,
) {
    let mut done = 0;
    while done < rows {
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut *connection)
            .await
            .expect("begin");
        for _ in 0..per_tx.min(rows - done) {
            *next += 1;
            let message = new_message(&fixture.room, fixture.senders[0], *next);
            raw_insert(connection, &message, *next).await;
            done += 1;
        }
        sqlx::query("COMMIT")
            .execute(&mut *connection)
            .await
            .expect("commit");
    }
}

/// `rows` appends from `senders` concurrent tasks, each sending its share back to back.
async fn store_sends(fixture: &Fixture, rows: u64, senders: usize) -> Duration {
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, sender) in fixture.senders.iter().take(senders).enumerate() {
        let share = rows / senders as u64 + u64::from((i as u64) < rows % senders as u64);
        let (store, room, sender) = (Arc::clone(&fixture.store), fixture.room.clone(), *sender);
        tasks.spawn(async move {
            for n in 0..share {
                store
                    .append_message(&new_message(&room, sender, n))
                    .await
                    .expect("append");
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("sender task");
    }
    start.elapsed()
}

fn send(c: &mut Criterion) {
    let rt = runtime();
    let fixture = rt.block_on(fixture(64));
    let mut raw = rt.block_on(raw_table(&fixture.dir));
    let mut next = 0;
    let mut group = c.benchmark_group("send");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    for per_tx in [1, 100] {
        group.bench_function(
            BenchmarkId::new("raw_sqlx", format!("{per_tx}_per_tx")),
            |b| {
                b.iter_custom(|rows| {
                    rt.block_on(async {
                        let start = Instant::now();
                        raw_inserts(&mut raw, &fixture, &mut next, rows, per_tx).await;
                        start.elapsed()
                    })
                })
            },
        );
    }
    for senders in [1, 64] {
        group.bench_function(
            BenchmarkId::new("store", format!("{senders}_senders")),
            |b| b.iter_custom(|rows| rt.block_on(store_sends(&fixture, rows, senders))),
        );
    }
    group.finish();
}

/// Fills the room to `messages` messages in one statement (the store's own append path would
/// take minutes for a million), then gives a reader a marker halfway.
async fn seeded(messages: u64) -> (Fixture, UserId) {
    let fixture = fixture(2).await;
    let path = fixture.dir.path().join("chat.db");
    let mut raw = SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::from_secs(30))
        .connect()
        .await
        .expect("seed connection");
    let owner = fixture.senders[0];
    sqlx::query(
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1) \
         INSERT INTO messages (room_id, seq, id, sender, body, created_at, change_id) \
         SELECT ?2, x, randomblob(16), ?3, 'seeded message ' || x, 1700000000000000 + x, x FROM n",
    )
    .bind(messages as i64)
    .bind(fixture.room.id.0)
    .bind(owner.0)
    .execute(&mut raw)
    .await
    .expect("seed messages");
    sqlx::query("UPDATE rooms SET last_seq = ?1, last_change = ?1 WHERE id = ?2")
        .bind(messages as i64)
        .bind(fixture.room.id.0)
        .execute(&mut raw)
        .await
        .expect("seed counters");
    let reader = fixture.senders[1];
    fixture
        .chat
        .mark_read(reader, fixture.room.id, messages / 2)
        .await
        .expect("marker");
    (fixture, reader)
}

fn read(c: &mut Criterion) {
    let rt = runtime();
    let mut group = c.benchmark_group("read");
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for size in [1_000u64, 1_000_000] {
        let (fixture, reader) = rt.block_on(seeded(size));
        let room = fixture.room.id;
        group.bench_function(BenchmarkId::new("history_newest_50", size), |b| {
            b.iter(|| {
                rt.block_on(fixture.chat.history(reader, room, Page::newest(50)))
                    .expect("history")
            })
        });
        group.bench_function(BenchmarkId::new("unread_count", size), |b| {
            b.iter(|| {
                let state = rt
                    .block_on(fixture.chat.read_state(reader, room))
                    .expect("read state");
                assert_eq!(state.unread, size - size / 2);
                state
            })
        });
    }
    group.finish();
}

criterion_group!(benches, send, read);
criterion_main!(benches);
