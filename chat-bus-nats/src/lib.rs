//! [`NatsBus`]: live events between engines over NATS, so that fan-out does not go through
//! the database (PostgreSQL's NOTIFY serialises notifying commits on one lock).
//!
//! The store stays the source of truth; the bus carries hints. Each bus handle is one node.
//! What it publishes reaches its own subscribers at once, and a sender task carries it to the
//! other nodes on one subject: the events queued since the last message go out together, as
//! one frame per NATS message (several under load, each below the server's payload limit). A
//! receiver task turns the other nodes' frames back into events.
//!
//! **One subject for all events.** The [`EventBus`] contract hands every subscriber every event
//! (each WebSocket subscription filters for its user), so a node needs all of them; a subject
//! per room would pay off only once nodes subscribe per room of their connected users, which
//! the seam does not know. One subject also keeps each node's events in publish order, which
//! NATS guarantees per publisher and subject.
//!
//! Nothing is dropped silently. The client reconnects by itself; a lost connection, a failed
//! publish, a full queue or a subscriber that falls behind all become [`Delivery::Lagged`]
//! (for a node's own subscribers, and, through the next frame's `lagged` flag, for the other
//! nodes'), after which subscriptions catch up from the store. [`EventBus::is_connected`]
//! says whether the server is reachable now, for health checks.

#[cfg(feature = "testing")]
pub mod testing;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use chat_core::events::{BusNode, Delivery, Event, EventBus, EventStream, NodeFanOut};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use uuid::Uuid;

/// The subject engines publish on unless told otherwise.
pub const DEFAULT_SUBJECT: &str = "chat.events";

/// Events a node may have queued for other nodes before it tells them it dropped some.
const QUEUE: usize = 16_384;

/// Events held for a local subscriber that reads slowly, before it lags.
const FAN_OUT: usize = 4_096;

/// How long a connection, or a round trip to the server, may take.
const ROUND_TRIP: Duration = Duration::from_secs(5);

/// The most events one frame carries.
const FRAME_EVENTS: usize = 1_000;

/// A frame as read: one node's events, in publish order. `lagged` tells the other nodes that
/// this node dropped events (or lost its connection) before them.
#[derive(Debug, Deserialize)]
struct Frame {
    node: Uuid,
    #[serde(default)]
    lagged: bool,
    events: Vec<Event>,
}

/// An [`EventBus`] over NATS: one handle per engine (node); clones share it.
#[derive(Clone)]
pub struct NatsBus {
    node: Arc<BusNode>,
    client: async_nats::Client,
}

impl std::fmt::Debug for NatsBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsBus").field("node", &self.node).finish()
    }
}

impl NatsBus {
    /// A node on `subject` ([`DEFAULT_SUBJECT`] is what `chat-server` uses) of the NATS server
    /// at `url`, whose subscription the server holds before this returns.
    pub async fn connect(url: &str, subject: &str) -> Result<Self, async_nats::Error> {
        let node = Uuid::now_v7();
        let (fan_out, queued) = NodeFanOut::new(FAN_OUT, QUEUE);
        let away = Arc::new(AtomicBool::new(false));
        let reconnected = Arc::new(Notify::new());
        let watcher = (fan_out.clone(), away, Arc::clone(&reconnected));
        let client = async_nats::ConnectOptions::new()
            .name(format!("chat-engine {node}"))
            .connection_timeout(ROUND_TRIP)
            // Reconnect forever, at once the first time, then at most a second apart: the
            // store carries the chat meanwhile. (The first attempt, the connection itself,
            // counts as 1.)
            .reconnect_delay_callback(|attempts| {
                Duration::from_millis((100 * (attempts as u64).saturating_sub(1)).min(1_000))
            })
            .event_callback(move |event| {
                let (fan_out, away, reconnected) = watcher.clone();
                async move { connection_changed(&event, &fan_out, &away, &reconnected) }
            })
            .connect(url)
            .await?;
        let subscriber = client.subscribe(subject.to_owned()).await?;
        round_trip(&client).await?;
        let sender = Sender {
            client: client.clone(),
            subject: subject.to_owned(),
            node,
            fan_out: fan_out.clone(),
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(sender.run(queued));
        tasks.spawn(receive(subscriber, node, fan_out.clone()));
        tasks.spawn(resync_when_back(
            client.clone(),
            reconnected,
            fan_out.clone(),
        ));
        Ok(Self {
            node: Arc::new(BusNode::new(node, fan_out, tasks)),
            client,
        })
    }
}

/// Waits until the server has handled what this client sent before, subscriptions included.
/// async-nats's `flush` only writes the socket: a subscription flushed may still be on its way,
/// and what other nodes publish meanwhile is lost to it without a word. A message to a subject
/// of our own comes back only once the server has handled everything sent before it, since it
/// handles a connection's operations in order.
async fn round_trip(client: &async_nats::Client) -> Result<(), async_nats::Error> {
    let inbox = client.new_inbox();
    let mut echo = client.subscribe(inbox.clone()).await?;
    client.publish(inbox, Vec::new().into()).await?;
    match tokio::time::timeout(ROUND_TRIP, echo.next()).await {
        Ok(Some(_)) => Ok(()),
        _ => Err("the NATS server did not answer a round trip".into()),
    }
}

/// What a change of the connection means for subscribers: while the server was away, the
/// other nodes' events were lost, and this node's may have been. `away` is set while it is;
/// `reconnected` wakes [`resync_when_back`].
fn connection_changed(
    event: &async_nats::Event,
    fan_out: &NodeFanOut,
    away: &AtomicBool,
    reconnected: &Notify,
) {
    match event {
        async_nats::Event::Disconnected => {
            tracing::warn!("event bus disconnected; subscribers resync when it is back");
            away.store(true, Ordering::Relaxed);
            fan_out.mark_dropped();
        }
        // Also said, late, of the first connection, when nothing was missed.
        async_nats::Event::Connected if away.swap(false, Ordering::Relaxed) => {
            tracing::info!("event bus reconnected");
            // A lag now, before anything heard on the new connection; and another once the
            // server holds the subscription again, for what it missed until then.
            fan_out.deliver(Delivery::Lagged);
            reconnected.notify_one();
        }
        async_nats::Event::SlowConsumer(_) => {
            tracing::warn!("event bus subscription fell behind; subscribers resync");
            fan_out.deliver(Delivery::Lagged);
        }
        _ => {}
    }
}

impl EventBus for NatsBus {
    fn publish(&self, event: Arc<Event>) {
        self.node.publish(event);
    }

    fn subscribe(&self) -> EventStream {
        self.node.subscribe()
    }

    fn is_connected(&self) -> bool {
        self.client.connection_state() == State::Connected
    }
}

/// The task that tells subscribers to resync after a reconnection once the server has this
/// node's subscription again: the resync at the reconnection itself may come before what other
/// nodes publish until the subscription is renewed, which this node never receives.
async fn resync_when_back(
    client: async_nats::Client,
    reconnected: Arc<Notify>,
    fan_out: NodeFanOut,
) {
    loop {
        reconnected.notified().await;
        if let Err(error) = round_trip(&client).await {
            // Lost again: the next reconnection tells subscribers once more.
            tracing::warn!(%error, "event bus reconnected, then did not answer");
        }
        fan_out.deliver(Delivery::Lagged);
    }
}

/// The task that carries one node's events to the others.
struct Sender {
    client: async_nats::Client,
    subject: String,
    node: Uuid,
    fan_out: NodeFanOut,
}

impl Sender {
    /// Sends what is queued, a frame at a time, until the bus is dropped.
    async fn run(self, mut queued: mpsc::Receiver<Arc<Event>>) {
        // Half the server's limit: room for the frame around the events.
        let limit = (self.client.server_info().max_payload / 2).max(64 * 1024);
        // An event that did not fit in the last frame: the first of the next.
        let mut carried: Option<String> = None;
        loop {
            let first = match carried.take() {
                Some(json) => json,
                None => match queued.recv().await {
                    Some(event) => match self.encode(&event) {
                        Some(json) => json,
                        None => continue,
                    },
                    None => return,
                },
            };
            let mut size = first.len();
            let mut events = vec![first];
            while events.len() < FRAME_EVENTS {
                let Ok(event) = queued.try_recv() else { break };
                let Some(json) = self.encode(&event) else {
                    continue;
                };
                if size + json.len() > limit {
                    carried = Some(json);
                    break;
                }
                size += json.len() + 1;
                events.push(json);
            }
            self.send(&events).await;
        }
    }

    /// One frame of events (each already JSON).
    async fn send(&self, events: &[String]) {
        let lagged = self.fan_out.take_dropped();
        let frame = format!(
            r#"{{"node":"{}","lagged":{lagged},"events":[{}]}}"#,
            self.node,
            events.join(",")
        );
        if let Err(error) = self
            .client
            .publish(self.subject.clone(), frame.into())
            .await
        {
            tracing::warn!(%error, "events not sent to other nodes; they will resync");
            self.fan_out.mark_dropped();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An event as JSON; one that cannot be encoded is dropped, and the next frame says so.
    fn encode(&self, event: &Event) -> Option<String> {
        match serde_json::to_string(event) {
            Ok(json) => Some(json),
            Err(error) => {
                tracing::warn!(%error, "an event could not be encoded; other nodes resync");
                self.fan_out.mark_dropped();
                None
            }
        }
    }
}

/// Turns the other nodes' frames into deliveries for this node's subscribers.
async fn receive(mut subscriber: async_nats::Subscriber, node: Uuid, fan_out: NodeFanOut) {
    while let Some(message) = subscriber.next().await {
        let frame = match serde_json::from_slice::<Frame>(&message.payload) {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(%error, "unreadable event frame; subscribers resync");
                fan_out.deliver(Delivery::Lagged);
                continue;
            }
        };
        if frame.node == node {
            continue;
        }
        if frame.lagged {
            tracing::info!(node = %frame.node, "another node dropped events; subscribers resync");
            fan_out.deliver(Delivery::Lagged);
        }
        for event in frame.events {
            fan_out.deliver(Delivery::Event(Arc::new(event)));
        }
    }
}
