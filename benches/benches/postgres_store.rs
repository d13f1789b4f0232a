//! `PostgresStore` against raw sqlx on the same database, in the same run, at PostgreSQL's
//! default durability (`synchronous_commit = on`).
//!
//! - `send/*`: appends per second. Baselines: raw inserts of the same rows into an equivalent
//!   table, one per transaction and 100 per transaction. The store with 1 sender and with 64
//!   concurrent senders.
//! - `read/*`: a newest-50 history page and an unread count in rooms of 1 000 and 1 000 000
//!   messages: the large room must cost the same as the small one.
//!
//! Run: `cargo bench -p benches --bench postgres_store` (database: `CHAT_TEST_POSTGRES_URL`,
//! each fixture in a schema of its own, dropped afterwards).

use std::sync::Arc;

use benches::{Fixture, runtime};
use chat_core::UserId;
use chat_core::store::NewStoredMessage;
use chat_store_postgres::testing::{TestSchema, postgres_missing};
use chat_store_postgres::{PostgresOptions, PostgresStore};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use sqlx::PgPool;

/// A store in a fresh schema, with the shared fixture over it.
async fn fixture(senders: usize) -> (TestSchema, Fixture, PgPool) {
    let schema = TestSchema::new();
    let options = PostgresOptions::new(&schema.url)
        .expect("a PostgreSQL URL")
        .pool_size(70)
        .schema(&schema.name);
    let store = PostgresStore::open_with(options).await.expect("open");
    let pool = store.pool().clone();
    let fixture = Fixture::new(Arc::new(store), senders).await;
    (schema, fixture, pool)
}

/// A table shaped like the store's messages table, beside it.
async fn raw_table(pool: &PgPool) {
    for statement in [
        "CREATE TABLE raw_messages (room_id UUID NOT NULL, seq BIGINT NOT NULL, \
         id UUID NOT NULL UNIQUE, sender UUID NOT NULL, body TEXT NOT NULL, reply_to UUID, \
         txn_id TEXT, metadata TEXT, created_at TIMESTAMPTZ NOT NULL, edited_at TIMESTAMPTZ, \
         deleted_at TIMESTAMPTZ, change_id BIGINT NOT NULL, PRIMARY KEY (room_id, seq))",
        "CREATE UNIQUE INDEX raw_by_txn ON raw_messages (sender, txn_id) WHERE txn_id IS NOT NULL",
        "CREATE INDEX raw_by_change ON raw_messages (room_id, change_id)",
    ] {
        sqlx::query(statement)
            .execute(pool)
            .await
            .expect("raw schema");
    }
}

async fn raw_inserts(pool: &PgPool, fixture: &Fixture, next: &mut u64, rows: u64, per_tx: u64) {
    let mut done = 0;
    while done < rows {
        let mut tx = pool.begin().await.expect("begin");
        for _ in 0..per_tx.min(rows - done) {
            *next += 1;
            let message: NewStoredMessage = fixture.message(fixture.senders[0], *next);
            sqlx::query(
                "INSERT INTO raw_messages (room_id, seq, id, sender, body, created_at, change_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(message.room_id.0)
            .bind(*next as i64)
            .bind(message.id.0)
            .bind(message.sender.0)
            .bind(&message.body)
            .bind(message.created_at)
            .bind(*next as i64)
            .execute(&mut *tx)
            .await
            .expect("raw insert");
            done += 1;
        }
        tx.commit().await.expect("commit");
    }
}

fn send(c: &mut Criterion) {
    if let Some(why) = postgres_missing() {
        return eprintln!("postgres_store send: skipped: {why}");
    }
    let rt = runtime();
    let (_schema, fixture, pool) = rt.block_on(fixture(64));
    rt.block_on(raw_table(&pool));
    let mut next = 0;
    let mut group = benches::send_group(c, "send");
    for per_tx in [1, 100] {
        group.bench_function(
            BenchmarkId::new("raw_sqlx", format!("{per_tx}_per_tx")),
            |b| {
                b.iter_custom(|rows| {
                    benches::timed(&rt, raw_inserts(&pool, &fixture, &mut next, rows, per_tx))
                })
            },
        );
    }
    benches::bench_store_sends(&mut group, &rt, &fixture);
    group.finish();
}

/// Fills the room to `messages` messages in one statement and moves the room's counters to
/// match, then gives a reader a marker halfway.
async fn seeded(messages: u64) -> ((TestSchema, PgPool), Fixture, UserId) {
    let (schema, fixture, pool) = fixture(2).await;
    let owner = fixture.senders[0];
    sqlx::query(
        "INSERT INTO messages (room_id, seq, id, sender, body, created_at, change_id) \
         SELECT $2, x, gen_random_uuid(), $3, 'seeded message ' || x, \
                now() + x * interval '1 microsecond', x \
         FROM generate_series(1, $1) AS x",
    )
    .bind(messages as i64)
    .bind(fixture.room.id.0)
    .bind(owner.0)
    .execute(&pool)
    .await
    .expect("seed messages");
    sqlx::query("UPDATE rooms SET last_seq = $1, last_change = $1 WHERE id = $2")
        .bind(messages as i64)
        .bind(fixture.room.id.0)
        .execute(&pool)
        .await
        .expect("seed counters");
    sqlx::query("ANALYZE messages")
        .execute(&pool)
        .await
        .expect("analyze");
    let reader = fixture.reader_halfway(messages).await;
    ((schema, pool), fixture, reader)
}

fn read(c: &mut Criterion) {
    if postgres_missing().is_some() {
        return;
    }
    let rt = runtime();
    benches::bench_reads(c, "read", &rt, |size| rt.block_on(seeded(size)));
}

criterion_group!(benches, send, read);
criterion_main!(benches);
