//! [`PostgresBus`]: live events between engines over PostgreSQL's LISTEN/NOTIFY.
//!
//! Each bus handle is one node. What it publishes reaches its own subscribers at once, and a
//! sender task carries it to the other nodes: the events queued since the last notification
//! go out together, as one JSON batch per `pg_notify` (coalesced under load; a batch larger
//! than a notification may carry is sent in pieces, in order). A listener task turns the other
//! nodes' notifications back into events.
//!
//! Nothing is dropped silently. A full queue, a failed notification, a lost listener connection
//! or a subscriber that falls behind all become [`Delivery::Lagged`], after which subscriptions
//! catch up from the store: a lost notification costs latency, never data.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chat_core::events::{BusNode, Delivery, Event, EventBus, EventStream, NodeFanOut};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use uuid::Uuid;

/// The channel engines notify on unless told otherwise.
pub const DEFAULT_CHANNEL: &str = "chat_events";

/// PostgreSQL refuses payloads of 8 000 bytes or more; frames stay below this.
const MAX_FRAME: usize = 7_900;

/// Events a node may have queued for other nodes before it tells them it dropped some.
const QUEUE: usize = 16_384;

/// Events held for a local subscriber that reads slowly, before it lags.
const FAN_OUT: usize = 4_096;

/// The most a half-received batch of one node may hold before it is dropped as lost.
const MAX_PARTIAL: usize = 4 << 20;

/// One notification: a whole batch of events as JSON text, or a piece of one (`more` until
/// the last). `lagged` tells the other nodes that this node dropped events before the batch.
#[derive(Debug, Serialize, Deserialize)]
struct Frame {
    node: Uuid,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    lagged: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    more: bool,
    batch: String,
}

/// An [`EventBus`] over PostgreSQL LISTEN/NOTIFY: one handle per engine (node); clones share it.
#[derive(Debug, Clone)]
pub struct PostgresBus {
    node: Arc<BusNode>,
}

impl PostgresBus {
    /// A node on `channel` ([`DEFAULT_CHANNEL`] is what `chat-server` uses), listening before
    /// this returns. Notifications go through `pool`; the listener holds one connection of its
    /// own from it.
    pub async fn connect(pool: &PgPool, channel: &str) -> Result<Self, sqlx::Error> {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(channel).await?;
        let node = Uuid::now_v7();
        let (fan_out, queued) = NodeFanOut::new(FAN_OUT, QUEUE);
        let sender = Sender {
            pool: pool.clone(),
            channel: channel.to_owned(),
            node,
            fan_out: fan_out.clone(),
        };
        let mut tasks = JoinSet::new();
        tasks.spawn(sender.run(queued));
        tasks.spawn(receive(listener, node, fan_out.clone()));
        Ok(Self {
            node: Arc::new(BusNode::new(node, fan_out, tasks)),
        })
    }
}

impl EventBus for PostgresBus {
    fn publish(&self, event: Arc<Event>) {
        self.node.publish(event);
    }

    fn subscribe(&self) -> EventStream {
        self.node.subscribe()
    }
}

/// The task that carries one node's events to the others.
struct Sender {
    pool: PgPool,
    channel: String,
    node: Uuid,
    fan_out: NodeFanOut,
}

impl Sender {
    /// Sends what is queued, a batch at a time, until the bus is dropped.
    async fn run(self, mut queued: mpsc::Receiver<Arc<Event>>) {
        while let Some(first) = queued.recv().await {
            let mut events = vec![first];
            while events.len() < 1_000 {
                match queued.try_recv() {
                    Ok(event) => events.push(event),
                    Err(_) => break,
                }
            }
            let lagged = self.fan_out.take_dropped();
            let sent = match serde_json::to_string(&events) {
                Ok(batch) => self.notify(lagged, &batch).await,
                Err(error) => Err(sqlx::Error::Encode(Box::new(error))),
            };
            if let Err(error) = sent {
                tracing::warn!(%error, "events not sent to other nodes; they will resync");
                self.fan_out.mark_dropped();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// One batch, in as many frames as it takes, each sent (and so committed) before the next:
    /// PostgreSQL delivers one session's notifications in commit order.
    async fn notify(&self, lagged: bool, batch: &str) -> Result<(), sqlx::Error> {
        let mut rest = batch;
        let mut piece = rest.len().min(MAX_FRAME);
        loop {
            let mut end = piece.min(rest.len());
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let frame = Frame {
                node: self.node,
                lagged,
                more: end < rest.len(),
                batch: rest[..end].to_owned(),
            };
            let text =
                serde_json::to_string(&frame).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            // Escaping can make a frame longer than its piece: try a smaller piece.
            if text.len() > MAX_FRAME && end > 64 {
                piece = end / 2;
                continue;
            }
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(text)
                .execute(&self.pool)
                .await?;
            rest = &rest[end..];
            if rest.is_empty() {
                return Ok(());
            }
            piece = MAX_FRAME;
        }
    }
}

/// Waits until the listener listens again: any statement on it reconnects it first, with its
/// LISTEN. (An outage is told before and after, not at every attempt: each Lagged makes every
/// subscription resync.)
async fn listen_again(listener: &mut PgListener) {
    while let Err(error) = sqlx::query("SELECT 1").execute(&mut *listener).await {
        tracing::debug!(%error, "event listener still cannot reconnect");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Turns the other nodes' notifications into deliveries for this node's subscribers.
async fn receive(mut listener: PgListener, node: Uuid, fan_out: NodeFanOut) {
    let mut partial: HashMap<Uuid, String> = HashMap::new();
    loop {
        let notification = match listener.try_recv().await {
            Ok(Some(notification)) => notification,
            // The connection was lost (notifications with it) and is back, listening again:
            // sqlx reconnects eagerly, so a resync from here misses nothing.
            Ok(None) => {
                partial.clear();
                fan_out.deliver(Delivery::Lagged);
                continue;
            }
            // It could not reconnect. Subscribers resync now, and again once it listens:
            // what other nodes notify before then never arrives here.
            Err(error) => {
                partial.clear();
                tracing::warn!(%error, "event listener failed; subscribers resync");
                fan_out.deliver(Delivery::Lagged);
                listen_again(&mut listener).await;
                fan_out.deliver(Delivery::Lagged);
                continue;
            }
        };
        let Ok(frame) = serde_json::from_str::<Frame>(notification.payload()) else {
            tracing::warn!("unreadable event notification ignored");
            continue;
        };
        if frame.node == node {
            continue;
        }
        if frame.lagged {
            fan_out.deliver(Delivery::Lagged);
        }
        let batch = partial.entry(frame.node).or_default();
        batch.push_str(&frame.batch);
        if batch.len() > MAX_PARTIAL {
            partial.remove(&frame.node);
            fan_out.deliver(Delivery::Lagged);
            continue;
        }
        if frame.more {
            continue;
        }
        let batch = partial.remove(&frame.node).unwrap_or_default();
        match serde_json::from_str::<Vec<Event>>(&batch) {
            Ok(events) => {
                for event in events {
                    fan_out.deliver(Delivery::Event(Arc::new(event)));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "unreadable event batch; subscribers resync");
                fan_out.deliver(Delivery::Lagged);
            }
        }
    }
}
