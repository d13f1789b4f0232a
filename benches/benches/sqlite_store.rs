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
use std::time::Duration;

use benches::{Fixture, runtime};
use chat_core::UserId;
use chat_core::store::NewStoredMessage;
use chat_store_sqlite::SqliteStore;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, SqliteConnection};
use tempfile::TempDir;

/// A SQLite store in a temp dir, with the shared fixture over it.
async fn fixture(senders: usize) -> (TempDir, Fixture) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path.to_string_lossy())
        .await
        .expect("open");
    let fixture = Fixture::new(Arc::new(store), senders).await;
    (dir, fixture)
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
            let message = fixture.message(fixture.senders[0], *next);
            raw_insert(connection, &message, *next).await;
            done += 1;
        }
        sqlx::query("COMMIT")
            .execute(&mut *connection)
            .await
            .expect("commit");
    }
}

fn send(c: &mut Criterion) {
    let rt = runtime();
    let (dir, fixture) = rt.block_on(fixture(64));
    let mut raw = rt.block_on(raw_table(&dir));
    let mut next = 0;
    let mut group = benches::send_group(c, "send");
    for per_tx in [1, 100] {
        group.bench_function(
            BenchmarkId::new("raw_sqlx", format!("{per_tx}_per_tx")),
            |b| {
                b.iter_custom(|rows| {
                    benches::timed(
                        &rt,
                        raw_inserts(&mut raw, &fixture, &mut next, rows, per_tx),
                    )
                })
            },
        );
    }
    benches::bench_store_sends(&mut group, &rt, &fixture);
    group.finish();
}

/// Fills the room to `messages` messages in one statement (the store's own append path would
/// take minutes for a million; the schema's trigger keeps the room's counters), then gives a
/// reader a marker halfway.
async fn seeded(messages: u64) -> (TempDir, Fixture, UserId) {
    let (dir, fixture) = fixture(2).await;
    let path = dir.path().join("chat.db");
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
    let reader = fixture.reader_halfway(messages).await;
    (dir, fixture, reader)
}

fn read(c: &mut Criterion) {
    let rt = runtime();
    benches::bench_reads(c, "read", &rt, |size| rt.block_on(seeded(size)));
}

criterion_group!(benches, send, read);
criterion_main!(benches);
