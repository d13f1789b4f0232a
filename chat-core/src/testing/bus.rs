//! The bus conformance suite: what every [`EventBus`] must do, specified once, as the store
//! suite does for stores. A bus crate runs it with
//! [`bus_conformance_tests!`](crate::bus_conformance_tests), giving an opener that returns two
//! handles on one fresh bus (as two processes would hold them) and a guard.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;

use super::follower::Follower;
use super::{Guard, epoch, test_config};
use crate::auth::LoginName;
use crate::clock::ManualClock;
use crate::events::{Delivery, Event, EventBus, EventStream};
use crate::ids::{IdSource, SequentialIds};
use crate::store::{MemoryStore, Store};
use crate::{Chat, NewMessage, NewRoom, NewUser, RoomId, UserId};

/// Opens a fresh bus for each case: two handles on it and what keeps it alive.
#[async_trait]
pub trait BusOpener: Send + Sync + 'static {
    /// Two handles on one new bus: what one publishes, subscribers of both receive.
    async fn open(&self) -> (Arc<dyn EventBus>, Arc<dyn EventBus>, Guard);
}

#[async_trait]
impl<F, Fut> BusOpener for F
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = (Arc<dyn EventBus>, Arc<dyn EventBus>, Guard)> + Send,
{
    async fn open(&self) -> (Arc<dyn EventBus>, Arc<dyn EventBus>, Guard) {
        self().await
    }
}

/// Opens an [`InProcessBus`](crate::events::InProcessBus): the opener of `chat-core`'s own run.
pub async fn in_process_bus() -> (Arc<dyn EventBus>, Arc<dyn EventBus>, Guard) {
    let bus: Arc<dyn EventBus> = Arc::new(crate::events::InProcessBus::default());
    (Arc::clone(&bus), bus, Box::new(()))
}

/// What every bus case gets.
#[derive(Clone)]
pub struct BusHarness {
    opener: Arc<dyn BusOpener>,
}

/// Two engines on one store, each publishing through its own handle of the bus under test.
pub struct Engines {
    /// The first engine.
    pub a: Arc<Chat>,
    /// The second engine.
    pub b: Arc<Chat>,
    _guard: Guard,
}

impl BusHarness {
    /// A harness over a bus opener.
    pub fn new(opener: impl BusOpener) -> Self {
        Self {
            opener: Arc::new(opener),
        }
    }

    /// Two handles on a fresh bus.
    pub async fn buses(&self) -> (Arc<dyn EventBus>, Arc<dyn EventBus>, Guard) {
        self.opener.open().await
    }

    /// Two engines on one in-memory store, one on each handle.
    pub async fn engines(&self) -> Engines {
        let (bus_a, bus_b, guard) = self.buses().await;
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let clock = Arc::new(ManualClock::new(epoch()));
        let ids: Arc<dyn IdSource> = Arc::new(SequentialIds::new());
        let engine = |bus: Arc<dyn EventBus>| {
            Chat::builder(Arc::clone(&store))
                .config(test_config())
                .clock(clock.clone())
                .ids(Arc::clone(&ids))
                .bus(bus)
                .build()
                .map(Arc::new)
                .expect("test engine builds")
        };
        Engines {
            a: engine(bus_a),
            b: engine(bus_b),
            _guard: guard,
        }
    }
}

/// Waits this long for a delivery before deciding that none is coming.
const PATIENCE: Duration = Duration::from_secs(5);

async fn next_delivery(stream: &mut EventStream) -> Option<Delivery> {
    tokio::time::timeout(PATIENCE, stream.next())
        .await
        .ok()
        .flatten()
}

fn typing(room: u128, user: u128) -> Arc<Event> {
    Arc::new(Event::Typing {
        room_id: RoomId(uuid::Uuid::from_u128(room)),
        user_id: UserId(uuid::Uuid::from_u128(user)),
        typing: true,
    })
}

/// A message event numbered `seq` with `body`, for a bus's own tests (large events, order).
pub fn message_event(seq: u64, body: String) -> Arc<Event> {
    let id = |n: u128| uuid::Uuid::from_u128(n);
    let new = crate::store::NewStoredMessage::text(
        crate::MessageId(id(u128::from(seq))),
        RoomId(id(1)),
        UserId(id(2)),
        body,
        chrono::DateTime::UNIX_EPOCH,
    );
    Arc::new(Event::MessageCreated {
        message: new.stored_at(seq, seq),
    })
}

pub async fn bus_serves_every_subscriber_in_each_publishers_order(h: BusHarness) {
    let (a, b, _guard) = h.buses().await;
    let mut streams = vec![a.subscribe(), a.subscribe(), b.subscribe()];
    for i in 0..50 {
        a.publish(typing(1, i));
        b.publish(typing(2, i));
    }
    for stream in &mut streams {
        let (mut from_a, mut from_b) = (Vec::new(), Vec::new());
        while from_a.len() + from_b.len() < 100 {
            match next_delivery(stream).await {
                Some(Delivery::Event(event)) => match &*event {
                    Event::Typing {
                        room_id, user_id, ..
                    } => {
                        let n = user_id.0.as_u128();
                        if room_id.0.as_u128() == 1 {
                            from_a.push(n);
                        } else {
                            from_b.push(n);
                        }
                    }
                    other => panic!("unexpected {other:?}"),
                },
                other => panic!(
                    "expected 100 events, got {other:?} after {}",
                    from_a.len() + from_b.len()
                ),
            }
        }
        let all: Vec<u128> = (0..50).collect();
        assert_eq!((from_a, from_b), (all.clone(), all));
    }
}

pub async fn bus_tells_a_lagging_subscriber(h: BusHarness) {
    let (a, b, _guard) = h.buses().await;
    let mut slow = b.subscribe();
    let mut fast = b.subscribe();
    const SENT: usize = 20_000;
    for i in 0..SENT {
        a.publish(typing(1, i as u128));
    }
    // Once a reader that keeps up hears what `a` published last, all of it has passed `slow`
    // by, however fast the bus carried it: far more than a bus may hold for a subscriber.
    let last = typing(2, 0);
    'heard: for _ in 0..50 {
        a.publish(Arc::clone(&last));
        while let Ok(Some(delivery)) =
            tokio::time::timeout(Duration::from_millis(200), fast.next()).await
        {
            if delivery == Delivery::Event(Arc::clone(&last)) {
                break 'heard;
            }
        }
    }
    let mut received = 0;
    loop {
        match next_delivery(&mut slow).await {
            Some(Delivery::Lagged) => break,
            Some(Delivery::Event(_)) => received += 1,
            None => panic!(
                "{received} of {SENT} events and never Lagged: the bus buffers without bound or loses events silently"
            ),
        }
    }
    assert!(received < SENT);
}

pub async fn bus_carries_messages_between_engines_in_order(h: BusHarness) {
    let engines = h.engines().await;
    let owner = engines
        .a
        .create_user(NewUser::named("owner"))
        .await
        .unwrap();
    let room = engines
        .a
        .create_room(owner.id, NewRoom::named("shared"))
        .await
        .unwrap();
    let mut on_a = engines.a.subscribe(owner.id).await.unwrap();
    let mut on_b = engines.b.subscribe(owner.id).await.unwrap();
    let mut tasks = Vec::new();
    for (i, engine) in [&engines.a, &engines.b].into_iter().enumerate() {
        let engine = Arc::clone(engine);
        let user = engine
            .create_user(NewUser::named(format!("sender{i}")))
            .await
            .unwrap();
        tasks.push(tokio::spawn(async move {
            for j in 0..40 {
                let new = NewMessage::text(format!("{i}:{j}"));
                engine.send(user.id, room.id, new).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all: Vec<u64> = (1..=80).collect();
    for (engine, feed) in [(&engines.a, &mut on_a), (&engines.b, &mut on_b)] {
        let mut client = Follower::new(engine, owner.id, room.id);
        client.follow(feed, 80).await;
        assert_eq!(client.seen(), all);
    }
}

pub async fn bus_reconnecting_subscriber_loses_nothing_after_catch_up(h: BusHarness) {
    let engines = h.engines().await;
    let (a, b) = (&engines.a, &engines.b);
    let alice = a.create_user(NewUser::named("alice")).await.unwrap();
    let bob = a.create_user(NewUser::named("bob")).await.unwrap();
    let room = a
        .create_room(alice.id, NewRoom::named("room"))
        .await
        .unwrap();
    b.join_room(bob.id, room.id, None).await.unwrap();
    let send = |n: u64| async move {
        a.send(alice.id, room.id, NewMessage::text(format!("{n}")))
            .await
            .unwrap();
    };
    let mut bob_client = Follower::new(b, bob.id, room.id);
    let mut feed = b.subscribe(bob.id).await.unwrap();
    for n in 1..=10 {
        send(n).await;
    }
    bob_client.follow(&mut feed, 5).await;
    feed.close().await; // the connection drops
    for n in 11..=20 {
        send(n).await;
    }
    // Reconnect (on the other engine), then catch up from the last message seen.
    let mut feed = a.subscribe(bob.id).await.unwrap();
    bob_client.catch_up().await;
    for n in 21..=25 {
        send(n).await;
    }
    bob_client.follow(&mut feed, 25).await;
    assert_eq!(bob_client.seen(), (1..=25).collect::<Vec<u64>>());
}

pub async fn bus_ends_logins_on_every_engine(h: BusHarness) {
    let engines = h.engines().await;
    let (a, b) = (&engines.a, &engines.b);
    a.register(NewUser::named("alice"), "correct horse battery")
        .await
        .unwrap();
    let login = b
        .login(LoginName::Username("alice".into()), "correct horse battery")
        .await
        .unwrap();
    let auth = b.authenticate(&login.tokens.access_token).await.unwrap();
    let mut feed = b.subscribe_login(auth).await.unwrap();
    a.logout(&login.tokens.access_token).await.unwrap();
    let ended = tokio::time::timeout(PATIENCE, feed.recv()).await.unwrap();
    assert!(matches!(ended.as_deref(), Some(Event::LoginEnded { .. })));
    assert!(
        tokio::time::timeout(PATIENCE, feed.recv())
            .await
            .unwrap()
            .is_none()
    );
}

/// Expands to one `#[test]` per bus case, each on buses from the given opener: an expression
/// implementing [`BusOpener`], typically
/// `|| async { (Arc::new(bus.clone()) as _, Arc::new(bus) as _, Box::new(guard) as Guard) }`.
/// `skip_when =` works as for
/// [`store_conformance_tests!`](crate::store_conformance_tests).
#[macro_export]
macro_rules! bus_conformance_tests {
    ($opener:expr) => {
        $crate::bus_conformance_tests!($opener, skip_when = || None::<String>);
    };
    ($opener:expr, skip_when = $skip:expr) => {
        $crate::__bus_cases!($opener; $skip;
            bus_serves_every_subscriber_in_each_publishers_order,
            bus_tells_a_lagging_subscriber,
            bus_carries_messages_between_engines_in_order,
            bus_reconnecting_subscriber_loses_nothing_after_catch_up,
            bus_ends_logins_on_every_engine,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __bus_cases {
    ($opener:expr; $skip:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                if let Some(why) = ($skip)() {
                    $crate::testing::skipped(stringify!($case), &why);
                    return;
                }
                $crate::testing::run(
                    $crate::testing::bus::BusHarness::new($opener),
                    $crate::testing::bus::$case,
                );
            }
        )*
    };
}
