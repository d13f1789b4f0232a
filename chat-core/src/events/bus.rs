//! The seam between engines: [`EventBus`], and the in-process bus.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use uuid::Uuid;

use super::Event;

/// What a bus hands a subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// An event, as published.
    Event(Arc<Event>),
    /// Events were dropped before this point (the subscriber fell behind, or the bus lost its
    /// connection and reconnected): what they said must be read from the store.
    Lagged,
}

/// A subscriber's stream of deliveries; it ends when the bus is gone.
pub type EventStream = BoxStream<'static, Delivery>;

/// Carries events from the engines that publish them to every subscriber, in this process or,
/// for a bus that crosses processes, in every process on the same store.
///
/// # Contract
///
/// - **Every subscriber is served**: an event published after [`EventBus::subscribe`] returned
///   reaches that stream, or the stream yields [`Delivery::Lagged`] in its place. Nothing is
///   dropped silently: a subscriber that is not told may conclude wrongly that a login is still
///   open or that it is still a member of a room.
/// - **Per-publisher order**: events one engine publishes reach each subscriber in the order
///   they were published. Events of different engines may interleave. (Subscriptions order
///   messages by sequence number themselves, so this is all they need.)
/// - **Publishing never blocks** on subscribers; a slow subscriber gets `Lagged`, and the memory
///   a bus holds for it is bounded.
/// - **A lost event costs latency, never data**: everything an event says is in the store, and
///   subscriptions read it from there after `Lagged` or when a sequence number is missing.
///
/// The conformance suite for buses is the `bus_conformance_tests!` macro (feature `testing`).
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event to every subscriber. Never blocks, whatever the subscribers do.
    fn publish(&self, event: Arc<Event>);

    /// A stream of every event published from now on: the subscription is in place when this
    /// returns, before the stream is first polled.
    fn subscribe(&self) -> EventStream;

    /// Whether the bus reaches the other engines now (for health checks). A bus within one
    /// process always does; one over a broker does not while its connection is down.
    fn is_connected(&self) -> bool {
        true
    }
}

/// A bus within one process, over a tokio broadcast channel: the default.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    sender: broadcast::Sender<Arc<Event>>,
}

impl InProcessBus {
    /// A bus that holds up to `capacity` events for a slow subscriber before it lags.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }
}

impl Default for InProcessBus {
    /// Holds 4 096 events.
    fn default() -> Self {
        Self::new(4096)
    }
}

/// The part of a bus between processes that stays in one node: the node's own subscribers,
/// served at once, and the queue of its events for the other nodes, which a task of the bus
/// drains. A clone is a handle on the same node (for the bus's tasks).
///
/// It keeps the [`EventBus`] contract's local half: publishing never blocks (a full queue
/// marks events as dropped, for the next batch to tell the other nodes), and a subscriber
/// that falls behind gets [`Delivery::Lagged`].
#[derive(Debug, Clone)]
pub struct NodeFanOut {
    local: broadcast::Sender<Delivery>,
    outbox: mpsc::Sender<Arc<Event>>,
    dropped: Arc<AtomicBool>,
}

impl NodeFanOut {
    /// A node holding up to `fan_out` deliveries for a slow subscriber and `queue` events for
    /// the other nodes; also returns the queue's receiving end.
    pub fn new(fan_out: usize, queue: usize) -> (Self, mpsc::Receiver<Arc<Event>>) {
        let (local, _) = broadcast::channel(fan_out.max(1));
        let (outbox, queued) = mpsc::channel(queue.max(1));
        let dropped = Arc::new(AtomicBool::new(false));
        let node = Self {
            local,
            outbox,
            dropped,
        };
        (node, queued)
    }

    /// Hands `event` to this node's subscribers and queues it for the other nodes.
    pub fn publish(&self, event: Arc<Event>) {
        let _ = self.local.send(Delivery::Event(Arc::clone(&event)));
        if self.outbox.try_send(event).is_err() {
            self.mark_dropped();
        }
    }

    /// A stream of what this node's subscribers get from now on.
    pub fn subscribe(&self) -> EventStream {
        let receiver = self.local.subscribe();
        futures_util::stream::unfold(receiver, |mut receiver| async move {
            let delivery = match receiver.recv().await {
                Ok(delivery) => delivery,
                Err(broadcast::error::RecvError::Lagged(_)) => Delivery::Lagged,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((delivery, receiver))
        })
        .boxed()
    }

    /// Hands this node's subscribers what another node sent (or `Lagged`, when some of it
    /// was lost).
    pub fn deliver(&self, delivery: Delivery) {
        let _ = self.local.send(delivery);
    }

    /// Notes that events of this node did not reach the other nodes.
    pub fn mark_dropped(&self) {
        self.dropped.store(true, Ordering::Relaxed);
    }

    /// Whether events were dropped since the last call: what the next batch must tell.
    pub fn take_dropped(&self) -> bool {
        self.dropped.swap(false, Ordering::Relaxed)
    }
}

/// A node of a bus between processes, running: its id, its [`NodeFanOut`], and the tasks that
/// carry its events to and from the other nodes, which stop when it is dropped (a `JoinSet`
/// aborts its tasks then). A bus keeps it behind an `Arc`, shared by the bus's clones, so the
/// tasks stop with the last of them.
///
/// A bus over a broker is these two and its transport: [`NodeFanOut::new`] gives the fan-out
/// and the queue of this node's events for the others; one task drains the queue onto the
/// broker (saying, with [`NodeFanOut::take_dropped`], when some were lost), another hands what
/// other nodes send to [`NodeFanOut::deliver`]; the bus's `publish` and `subscribe` are the
/// node's. `chat-store-postgres` (LISTEN/NOTIFY) and `chat-bus-nats` are built so, and the bus
/// conformance suite checks the result.
pub struct BusNode {
    id: Uuid,
    fan_out: NodeFanOut,
    _tasks: JoinSet<()>,
}

impl BusNode {
    /// The node `id`, whose events `tasks` carry through `fan_out`.
    pub fn new(id: Uuid, fan_out: NodeFanOut, tasks: JoinSet<()>) -> Self {
        Self {
            id,
            fan_out,
            _tasks: tasks,
        }
    }

    /// The node's id, which its frames carry so that it can skip its own.
    pub fn id(&self) -> Uuid {
        self.id
    }
}

impl std::fmt::Debug for BusNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusNode").field("id", &self.id).finish()
    }
}

impl EventBus for BusNode {
    fn publish(&self, event: Arc<Event>) {
        self.fan_out.publish(event);
    }

    fn subscribe(&self) -> EventStream {
        self.fan_out.subscribe()
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: Arc<Event>) {
        // An error only means that nobody is subscribed right now.
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> EventStream {
        let receiver = self.sender.subscribe();
        futures_util::stream::unfold(receiver, |mut receiver| async move {
            let delivery = match receiver.recv().await {
                Ok(event) => Delivery::Event(event),
                Err(broadcast::error::RecvError::Lagged(_)) => Delivery::Lagged,
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            Some((delivery, receiver))
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::oneshot;

    use super::*;

    #[tokio::test]
    async fn a_bus_node_stops_its_tasks_when_dropped() {
        let (fan_out, _queued) = NodeFanOut::new(4, 4);
        let (running, stopped) = oneshot::channel::<()>();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let _running = running;
            std::future::pending::<()>().await;
        });
        drop(BusNode::new(Uuid::now_v7(), fan_out, tasks));
        // An aborted task drops what it holds: the sender, so the receiver ends.
        let ended = tokio::time::timeout(Duration::from_secs(10), stopped).await;
        assert!(
            ended.is_ok(),
            "the node's task still runs after the node was dropped"
        );
    }
}
