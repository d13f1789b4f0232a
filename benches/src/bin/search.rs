//! search: message search on a million messages in a thousand rooms, through `Chat`, on SQLite
//! and PostgreSQL: p50/p99 latency of a page (50) for a rare word, a common word and a prefix,
//! in one room and across the searcher's 50 rooms; and the index's size against the messages'.
//!
//! Run: `cargo run --release -p benches --bin search -- [--messages N] [--stores sqlite,postgres]`
//! (PostgreSQL: `CHAT_TEST_POSTGRES_URL`, a schema of its own, dropped at the end).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::{Chat, NewRoom, NewUser, RoomId, UserId};
use chat_store_postgres::testing::TestSchema;
use chat_store_postgres::{PostgresOptions, PostgresStore};
use chat_store_sqlite::SqliteStore;
use clap::Parser;

#[derive(Parser)]
struct Args {
    /// Messages to seed, spread over the rooms.
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    /// Rooms; the searcher is a member of 50 of them.
    #[arg(long, default_value_t = 1_000)]
    rooms: u64,
    /// Searches per query, after one to warm up.
    #[arg(long, default_value_t = 100)]
    queries: usize,
    /// `sqlite`, `postgres`, or both.
    #[arg(long, default_value = "sqlite,postgres", value_delimiter = ',')]
    stores: Vec<String>,
    /// Also keep a copy of the seeded SQLite database in this file (the fixture for timing
    /// `chat-server export` on a million messages).
    #[arg(long)]
    keep: Option<std::path::PathBuf>,
}

/// Words by falling frequency: the first is in about every other message, the last rarely.
const WORDS: &[&str] = &[
    "the",
    "chat",
    "and",
    "room",
    "we",
    "you",
    "message",
    "today",
    "meeting",
    "plan",
    "team",
    "lunch",
    "release",
    "review",
    "question",
    "answer",
    "build",
    "deploy",
    "fix",
    "bug",
    "ticket",
    "design",
    "coffee",
    "weekend",
    "monday",
    "friday",
    "conversation",
    "convey",
    "convert",
    "convince",
    "server",
    "client",
    "search",
    "index",
    "storage",
    "network",
    "latency",
    "budget",
    "roadmap",
    "customer",
    "feedback",
    "demo",
    "draft",
    "schedule",
    "office",
    "remote",
    "travel",
    "holiday",
    "birthday",
    "cake",
    "music",
    "movie",
    "book",
    "garden",
    "weather",
    "rain",
    "sunny",
    "snow",
    "train",
    "station",
    "airport",
    "hotel",
    "dinner",
    "breakfast",
    "recipe",
    "kitchen",
    "bicycle",
    "marathon",
    "football",
    "tennis",
];

/// The rare word: in one message of every 100 000, all of them in the first room (one of the
/// searcher's).
const RARE: &str = "zephyrine";

/// A deterministic message of 8 to 15 words, lowercase ASCII separated by single spaces (so its
/// text is its own search terms, and seeding can index it without Rust in between).
fn body(n: u64) -> String {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let count = 8 + next() % 8;
    let mut words: Vec<&str> = (0..count)
        .map(|_| {
            // Skewed towards the first words: the square of a uniform draw.
            let r = (next() % 10_000) as f64 / 10_000.0;
            WORDS[((r * r) * WORDS.len() as f64) as usize]
        })
        .collect();
    if n.is_multiple_of(100_000) {
        words.push(RARE);
    }
    words.join(" ")
}

struct Seeded {
    chat: Chat,
    searcher: UserId,
    one_room: RoomId,
}

/// Users, rooms (the searcher in 50 of them), through `Chat`.
async fn people(chat: Chat, rooms: u64) -> (Seeded, Vec<RoomId>, UserId) {
    let owner = chat
        .create_user(NewUser::named("owner"))
        .await
        .expect("owner");
    let searcher = chat
        .create_user(NewUser::named("searcher"))
        .await
        .expect("searcher");
    let (mut ids, mut joined) = (Vec::new(), 0);
    for n in 0..rooms {
        let room = chat
            .create_room(owner.id, NewRoom::named(format!("room {n}")))
            .await
            .expect("room");
        if n.is_multiple_of((rooms / 50).max(1)) && joined < 50 {
            chat.join_room(searcher.id, room.id, None)
                .await
                .expect("join");
            joined += 1;
        }
        ids.push(room.id);
    }
    let one_room = ids[0];
    let seeded = Seeded {
        chat,
        searcher: searcher.id,
        one_room,
    };
    (seeded, ids, owner.id)
}

/// The rows to seed, a batch at a time: (room, seq, id, body).
fn batches(
    rooms: &[RoomId],
    messages: u64,
) -> impl Iterator<Item = Vec<(RoomId, i64, uuid::Uuid, String)>> + '_ {
    const BATCH: u64 = 10_000;
    (0..messages.div_ceil(BATCH)).map(move |b| {
        (b * BATCH..((b + 1) * BATCH).min(messages))
            .map(|n| {
                let room = rooms[(n % rooms.len() as u64) as usize];
                let seq = (n / rooms.len() as u64 + 1) as i64;
                (room, seq, uuid::Uuid::now_v7(), body(n))
            })
            .collect()
    })
}

async fn sqlite(args: &Args) -> (Seeded, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path.to_string_lossy())
        .await
        .expect("open");
    let (seeded, rooms, owner) = people(Chat::new(Arc::new(store)), args.rooms).await;
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .busy_timeout(Duration::from_secs(60));
    raw = raw.pragma("synchronous", "OFF");
    let mut c = sqlx::ConnectOptions::connect(&raw)
        .await
        .expect("raw connection");
    let start = Instant::now();
    let mut next_row = 0i64;
    let waiting_after = (i64::try_from(args.messages).expect("a count") - 512).max(0);
    for batch in batches(&rooms, args.messages) {
        let rows: Vec<_> = batch
            .iter()
            .map(|(room, seq, id, body)| {
                next_row += 1;
                (
                    room.0.simple().to_string(),
                    seq,
                    id.simple().to_string(),
                    body,
                    next_row,
                )
            })
            .collect();
        // The body is its own terms (lowercase words), indexed under the message's search row
        // as the writer would, but for the newest: on average, half the store's batch of 1024
        // waits for the index, and search reads their bodies.
        let rows = serde_json::to_string(&rows).expect("json");
        for sql in [
            "INSERT INTO messages (room_id, seq, id, sender, body, created_at, change_id, \
                                   search_row) \
             SELECT unhex(value ->> 0), value ->> 1, unhex(value ->> 2), ?2, value ->> 3, \
                    1700000000000000 + value ->> 1, value ->> 1, value ->> 4 \
             FROM json_each(?1)",
            "INSERT INTO search_index (rowid, terms) \
             SELECT value ->> 4, value ->> 3 FROM json_each(?1) WHERE value ->> 4 <= ?3",
        ] {
            sqlx::query(sql)
                .bind(&rows)
                .bind(owner.0)
                .bind(waiting_after)
                .execute(&mut c)
                .await
                .expect("seed");
        }
    }
    sqlx::query("UPDATE search_progress SET indexed = ?")
        .bind(waiting_after)
        .execute(&mut c)
        .await
        .expect("seed");
    eprintln!(
        "sqlite: seeded {} messages in {:?}",
        args.messages,
        start.elapsed()
    );
    if let Some(keep) = &args.keep {
        sqlx::query("VACUUM INTO ?")
            .bind(keep.to_string_lossy().into_owned())
            .execute(&mut c)
            .await
            .expect("a copy of the database");
    }
    let sizes: Vec<(String, i64)> = sqlx::query_as(
        "SELECT name, sum(pgsize) FROM dbstat \
         WHERE name = 'messages' OR name LIKE 'search%' \
         GROUP BY name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap_or_default();
    let size = |f: &dyn Fn(&str) -> bool| {
        sizes
            .iter()
            .filter(|(n, _)| f(n))
            .map(|(_, s)| s)
            .sum::<i64>()
    };
    let messages = size(&|n| n == "messages");
    let index = size(&|n| n != "messages");
    let share = if messages > 0 {
        format!(
            "index {} MiB, messages {} MiB: {:.0} %",
            index >> 20,
            messages >> 20,
            100.0 * index as f64 / messages as f64
        )
    } else {
        "sizes unknown (no dbstat)".into()
    };
    (seeded, share, dir)
}

async fn postgres(args: &Args) -> (Seeded, String, TestSchema) {
    let schema = TestSchema::new();
    let options = PostgresOptions::new(&schema.url)
        .expect("a PostgreSQL URL")
        .schema(&schema.name);
    let store = PostgresStore::open_with(options).await.expect("open");
    let pool = store.pool().clone();
    let (seeded, rooms, owner) = people(Chat::new(Arc::new(store)), args.rooms).await;
    let start = Instant::now();
    for batch in batches(&rooms, args.messages) {
        let mut room_ids = Vec::new();
        let mut seqs = Vec::new();
        let mut ids = Vec::new();
        let mut bodies = Vec::new();
        for (room, seq, id, body) in batch {
            room_ids.push(room.0);
            seqs.push(seq);
            ids.push(id);
            bodies.push(body);
        }
        sqlx::query(
            "INSERT INTO messages (room_id, seq, id, sender, body, created_at, change_id, \
                                   search_terms) \
             SELECT r, s, i, $4, b, now(), s, array_to_tsvector(string_to_array(b, ' ')) \
             FROM unnest($1::uuid[], $2::bigint[], $3::uuid[], $5::text[]) AS t (r, s, i, b)",
        )
        .bind(room_ids)
        .bind(seqs)
        .bind(ids)
        .bind(owner.0)
        .bind(bodies)
        .execute(&pool)
        .await
        .expect("seed");
    }
    sqlx::query("ANALYZE")
        .execute(&pool)
        .await
        .expect("analyze");
    eprintln!(
        "postgres: seeded {} messages in {:?}",
        args.messages,
        start.elapsed()
    );
    let (index, messages): (i64, i64) =
        sqlx::query_as("SELECT pg_relation_size('messages_search'), pg_table_size('messages')")
            .fetch_one(&pool)
            .await
            .expect("sizes");
    let share = format!(
        "index {} MiB, messages {} MiB: {:.0} %",
        index >> 20,
        messages >> 20,
        100.0 * index as f64 / messages as f64
    );
    (seeded, share, schema)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(store: &str, seeded: &Seeded, queries: usize) {
    for (what, text) in [
        ("rare word", RARE),
        ("common word", "chat"),
        ("prefix", "conv"),
    ] {
        for (scope, room) in [("1 room", Some(seeded.one_room)), ("50 rooms", None)] {
            let mut times = Vec::with_capacity(queries);
            let mut found = 0;
            for i in 0..=queries {
                let start = Instant::now();
                let page = seeded
                    .chat
                    .search(seeded.searcher, text, room, None, Some(50))
                    .await
                    .expect("search");
                if i > 0 {
                    times.push(start.elapsed());
                }
                found = page.items.len();
            }
            times.sort();
            println!(
                "| {store} | {what} `{text}` | {scope} | {found} | {:.2} | {:.2} |",
                percentile(&times, 0.5).as_secs_f64() * 1e3,
                percentile(&times, 0.99).as_secs_f64() * 1e3,
            );
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = Args::parse();
    println!("| store | query | scope | found (page of 50) | p50 ms | p99 ms |");
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut sizes = Vec::new();
    if args.stores.iter().any(|s| s == "sqlite") {
        let (seeded, share, _dir) = sqlite(&args).await;
        measure("SQLite", &seeded, args.queries).await;
        sizes.push(format!("SQLite: {share}"));
    }
    if args.stores.iter().any(|s| s == "postgres") {
        let (seeded, share, _schema) = postgres(&args).await;
        measure("PostgreSQL", &seeded, args.queries).await;
        sizes.push(format!("PostgreSQL: {share}"));
    }
    for size in sizes {
        println!("\n{size}");
    }
}
