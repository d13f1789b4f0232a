//! Shared pieces of the store benchmarks in `benches/`: a fixture (store, engine, room,
//! senders) and the concurrent send loop. Run them with `cargo bench -p benches`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark setup: failing loudly is right

use std::cell::OnceCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chat_core::clock::{Clock, SystemClock};
use chat_core::store::{NewStoredMessage, Store};
use chat_core::{Chat, HistoryQuery, MessageId, NewRoom, NewUser, Room, UserId};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use tokio::runtime::Runtime;

/// A two-thread runtime, like the machines these figures are quoted for.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A store with an engine over it, one room, and `senders` members of it (the first owns it).
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// An engine over it.
    pub chat: Chat,
    /// The room everyone sends to.
    pub room: Room,
    /// Its members.
    pub senders: Vec<UserId>,
}

impl Fixture {
    /// Creates the users and the room in `store`.
    pub async fn new(store: Arc<dyn Store>, senders: usize) -> Self {
        let chat = Chat::new(Arc::clone(&store));
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
        Self {
            store,
            chat,
            room,
            senders: ids,
        }
    }

    /// The `n`-th message of a sender, as the store receives it.
    pub fn message(&self, sender: UserId, n: u64) -> NewStoredMessage {
        new_message(&self.room, sender, n)
    }

    /// Gives the second member a read marker halfway through a room of `messages` messages
    /// (the reader of the read benchmarks), and returns it.
    pub async fn reader_halfway(&self, messages: u64) -> UserId {
        let reader = self.senders[1];
        self.chat
            .mark_read(reader, self.room.id, messages / 2)
            .await
            .expect("marker");
        reader
    }

    /// `rows` appends of `kind` from `senders` concurrent tasks, each sending its share back
    /// to back; the time they took.
    pub async fn sends(&self, rows: u64, senders: usize, kind: SendKind) -> Duration {
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        // Each sender mentions the room's owner (who is not among the senders when one sends).
        let owner = self.senders[0];
        for (i, sender) in self.senders.iter().take(senders).enumerate() {
            let share = rows / senders as u64 + u64::from((i as u64) < rows % senders as u64);
            let (store, room, sender) = (Arc::clone(&self.store), self.room.clone(), *sender);
            let mentioned = if sender == owner {
                self.senders[1]
            } else {
                owner
            };
            tasks.spawn(async move {
                for n in 0..share {
                    let mut message = new_message(&room, sender, n);
                    match kind {
                        SendKind::Plain => {}
                        SendKind::Mention => message.mentions = vec![mentioned],
                        SendKind::ThreadReply(root) => message.thread_root = Some(root),
                    }
                    store.append_message(&message).await.expect("append");
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.expect("sender task");
        }
        start.elapsed()
    }
}

/// How long `work` takes on `rt`: a raw baseline's `iter_custom` measure.
pub fn timed(rt: &Runtime, work: impl Future<Output = ()>) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        work.await;
        start.elapsed()
    })
}

/// What each send of a benchmark carries besides its text.
#[derive(Debug, Clone, Copy)]
pub enum SendKind {
    /// Nothing else.
    Plain,
    /// A mention of another member.
    Mention,
    /// It replies in the thread of this root (all sends in the same thread).
    ThreadReply(MessageId),
}

/// A message as the store receives it.
pub fn new_message(room: &Room, sender: UserId, n: u64) -> NewStoredMessage {
    NewStoredMessage::text(
        MessageId(uuid::Uuid::now_v7()),
        room.id,
        sender,
        format!("message number {n} of the benchmark"),
        SystemClock.now(),
    )
}

/// The read benchmarks every store runs: a newest-50 history page and an unread count in rooms
/// of 1 000 and 1 000 000 messages, then the same page once each of its messages carries two
/// reactions (`history_newest_50_reacted`, against `history_newest_50` of the same room).
/// `seeded_room(n)` returns a guard to keep alive, a fixture whose room holds `n` messages, and a
/// reader whose marker is at `n / 2`.
pub fn bench_reads<G>(
    c: &mut Criterion,
    group: &str,
    rt: &Runtime,
    seeded_room: impl Fn(u64) -> (G, Fixture, UserId),
) {
    let mut group = c.benchmark_group(group);
    group
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for size in [1_000u64, 1_000_000] {
        // Seeded on first use, so that a run of other benchmarks (`-- send/`) does not wait for
        // a million messages; the reactions likewise, after the plain pages.
        let seeded = OnceCell::new();
        let seeded = || {
            let (_guard, fixture, reader) = seeded.get_or_init(|| seeded_room(size));
            (fixture, *reader, fixture.room.id)
        };
        let reacted = OnceCell::new();
        group.bench_function(BenchmarkId::new("history_newest_50", size), |b| {
            let (fixture, reader, room) = seeded();
            b.iter(|| {
                rt.block_on(fixture.chat.history(reader, room, HistoryQuery::newest(50)))
                    .expect("history")
            })
        });
        group.bench_function(BenchmarkId::new("unread_count", size), |b| {
            let (fixture, reader, room) = seeded();
            b.iter(|| {
                let state = rt
                    .block_on(fixture.chat.read_state(reader, room))
                    .expect("read state");
                assert_eq!(state.unread, size - size / 2);
                state
            })
        });
        group.bench_function(BenchmarkId::new("history_newest_50_reacted", size), |b| {
            let (fixture, reader, room) = seeded();
            reacted.get_or_init(|| rt.block_on(react_to_newest_50(fixture, reader)));
            b.iter(|| {
                let page = rt
                    .block_on(fixture.chat.history(reader, room, HistoryQuery::newest(50)))
                    .expect("history");
                assert_eq!(page.items[0].reactions.len(), 2);
                page
            })
        });
    }
    group.finish();
}

/// Two reactions on each of the room's newest 50 messages: the reader's and the owner's.
async fn react_to_newest_50(fixture: &Fixture, reader: UserId) {
    let room = fixture.room.id;
    let page = fixture.chat.history(reader, room, HistoryQuery::newest(50));
    for message in page.await.expect("history").items {
        for (user, key) in [(reader, "👍"), (fixture.senders[0], "🎉")] {
            let reacted = fixture.chat.add_reaction(user, room, message.id, key);
            reacted.await.expect("reaction");
        }
    }
}

/// The group of send benchmarks: throughput in messages, few long samples (each send waits
/// for durable storage).
pub fn send_group<'c>(c: &'c mut Criterion, name: &str) -> BenchmarkGroup<'c, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .throughput(Throughput::Elements(1))
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    group
}

/// The store's appends with 1 and with 64 concurrent senders, into `group`: plain
/// (`store`), each mentioning a member (`store_mention`), and each a reply in one thread
/// (`store_thread_reply`), so the cost of a mention and of a thread reply reads against a plain
/// send of the same run.
pub fn bench_store_sends(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    fixture: &Fixture,
) {
    let root = rt
        .block_on(
            fixture
                .store
                .append_message(&fixture.message(fixture.senders[0], 0)),
        )
        .expect("thread root")
        .message
        .id;
    let kinds = [
        ("store", SendKind::Plain),
        ("store_mention", SendKind::Mention),
        ("store_thread_reply", SendKind::ThreadReply(root)),
    ];
    for senders in [1, 64] {
        for (name, kind) in kinds {
            group.bench_function(BenchmarkId::new(name, format!("{senders}_senders")), |b| {
                b.iter_custom(|rows| rt.block_on(fixture.sends(rows, senders, kind)))
            });
        }
    }
}
