//! `SledStore` against raw sled on the same machine, in the same run.
//!
//! - `send/*`: appends per second, acknowledged only once flushed. Baselines: raw inserts of
//!   the same key/value shape into a sled tree, flushed after every insert and after every
//!   100. The store with 1 sender and with 64 concurrent senders (group flush).
//! - `read/*`: a newest-50 history page and an unread count in rooms of 1 000 and 1 000 000
//!   messages.
//!
//! Run: `cargo bench -p benches --bench sled_store`.

use std::sync::Arc;

use benches::{Fixture, runtime};
use chat_core::UserId;
use chat_core::store::Store;
use chat_store_sled::{Durability, SledStore};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tempfile::TempDir;

async fn fixture(senders: usize, durability: Durability) -> (TempDir, Fixture) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sled");
    let store = SledStore::open_with(&path.to_string_lossy(), durability)
        .await
        .expect("open");
    let fixture = Fixture::new(Arc::new(store) as Arc<dyn Store>, senders).await;
    (dir, fixture)
}

/// The same key (room ‖ seq) and value (the message as JSON) the store writes.
async fn raw_inserts(
    tree: &sled::Tree,
    fixture: &Fixture,
    next: &mut u64,
    rows: u64,
    per_flush: u64,
) {
    for i in 0..rows {
        *next += 1;
        let new = fixture.message(fixture.senders[0], *next);
        let mut key = fixture.room.id.0.as_bytes().to_vec();
        key.extend_from_slice(&next.to_be_bytes());
        let value = serde_json::to_vec(&(new.id, new.body, new.created_at)).expect("json");
        tree.insert(key, value).expect("insert");
        if (i + 1) % per_flush == 0 || i + 1 == rows {
            tree.flush_async().await.expect("flush");
        }
    }
}

fn send(c: &mut Criterion) {
    let rt = runtime();
    let (dir, fixture) = rt.block_on(fixture(64, Durability::Flushed));
    let raw = sled::open(dir.path().join("raw")).expect("raw sled");
    let tree = raw.open_tree("messages").expect("tree");
    let mut next = 0;
    let mut group = benches::send_group(c, "sled_send");
    for per_flush in [1, 100] {
        group.bench_function(
            BenchmarkId::new("raw_sled", format!("flush_per_{per_flush}")),
            |b| {
                b.iter_custom(|rows| {
                    benches::timed(
                        &rt,
                        raw_inserts(&tree, &fixture, &mut next, rows, per_flush),
                    )
                })
            },
        );
    }
    benches::bench_store_sends(&mut group, &rt, &fixture);
    group.finish();
}

/// A room of `messages` messages appended through the store (flushing in the background to
/// keep seeding short; reads do not depend on it), and a reader's marker halfway.
async fn seeded(messages: u64) -> (TempDir, Fixture, UserId) {
    let (dir, fixture) = fixture(2, Durability::Background).await;
    fixture.sends(messages, 1, benches::SendKind::Plain).await;
    let reader = fixture.reader_halfway(messages).await;
    (dir, fixture, reader)
}

fn read(c: &mut Criterion) {
    let rt = runtime();
    benches::bench_reads(c, "sled_read", &rt, |size| rt.block_on(seeded(size)));
}

criterion_group!(benches, send, read);
criterion_main!(benches);
