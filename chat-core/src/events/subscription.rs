//! [`Subscription`]: one user's live feed, in sequence order, caught up from the store.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;

use super::{Delivery, Event, EventStream};
use crate::chat::Lease;
use crate::clock::Clock;
use crate::error::StoreError;
use crate::ids::{RoomId, SessionId, UserId};
use crate::store::{RoomQuery, SeqRange, Store};

/// Message events held per room while an earlier number is missing, before the gap is filled
/// from the store without waiting any longer.
const MAX_HELD: usize = 256;
/// Missing messages read from the store to fill one gap (held ones are not counted). A larger
/// gap is not replayed: the feed says [`Event::Resync`] and the client catches up with
/// [`Chat::changes`](crate::Chat::changes).
const MAX_FILL: u64 = 256;

/// One user's live feed: the events of the rooms the user belongs to, following joins and
/// leaves; each room's new messages in sequence order, exactly once. Made by
/// [`Chat::subscribe`](crate::Chat::subscribe) and its variants.
///
/// - A message event that arrives before an earlier number of its room waits for it; a number
///   that has not arrived after [`ChatConfig::gap_wait`](crate::ChatConfig::gap_wait) is read
///   from the store. An append that published nothing (made through the store directly, or
///   whose event was lost) therefore delays the room's next messages by that long at most.
/// - When the bus dropped events, the feed re-reads the user's rooms (a room left meanwhile
///   goes silent, a room joined meanwhile delivers) and whether its login still stands, then
///   says [`Event::Resync`] and continues each room from its newest message at that point:
///   what came before, the client reads with [`Chat::changes`](crate::Chat::changes).
/// - When its login ends, on any engine, the feed yields [`Event::LoginEnded`] and then ends.
/// - While it exists, the user counts as online on every engine (see
///   [`Chat::online`](crate::Chat::online)).
/// - If the store fails while the feed reads it, the feed ends (`None`): a client then
///   reconnects and catches up, rather than trusting a feed that may have missed something.
///
/// [`Subscription::recv`] is cancel safe: in a `tokio::select!` that drops it half-way, no
/// event is lost, and work that reads the store is taken up again by the next call.
pub struct Subscription {
    user: UserId,
    session: Option<SessionId>,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    events: EventStream,
    rooms: HashMap<RoomId, RoomFeed>,
    /// Rooms whose feed waits for a missing number, and since when.
    waiting: HashMap<RoomId, Instant>,
    /// Events ready to hand out, in order.
    ready: VecDeque<Arc<Event>>,
    /// An event from the bus not yet filed (filing may read the store): kept here until it is,
    /// so that a `recv` cancelled half-way loses nothing.
    unfiled: Option<Arc<Event>>,
    /// The bus dropped events and the resync has not completed yet.
    lagged: bool,
    gap_wait: Duration,
    ended: bool,
    lease: Option<Lease>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("user", &self.user)
            .field("session", &self.session)
            .field("rooms", &self.rooms.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// One room as the feed follows it.
#[derive(Debug)]
struct RoomFeed {
    /// The last sequence number delivered (or already known when the feed started).
    delivered: u64,
    /// Message events above `delivered + 1`, waiting for the numbers before them.
    held: BTreeMap<u64, Arc<Event>>,
}

impl RoomFeed {
    fn after(delivered: u64) -> Self {
        Self {
            delivered,
            held: BTreeMap::new(),
        }
    }
}

/// What woke the feed.
enum Step {
    Bus(Option<Delivery>),
    GapOverdue,
}

/// How the feed was opened.
pub(crate) struct Opened {
    pub(crate) user: UserId,
    pub(crate) session: Option<SessionId>,
    /// Each room and its newest sequence number when the rooms were read.
    pub(crate) rooms: Vec<(RoomId, u64)>,
    pub(crate) gap_wait: Duration,
    pub(crate) lease: Lease,
}

impl Subscription {
    /// `events` must have been subscribed before the rooms were read, so that no event falls
    /// between the two.
    pub(crate) fn new(
        opened: Opened,
        events: EventStream,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            user: opened.user,
            session: opened.session,
            store,
            clock,
            events,
            rooms: opened
                .rooms
                .into_iter()
                .map(|(room, last_seq)| (room, RoomFeed::after(last_seq)))
                .collect(),
            waiting: HashMap::new(),
            ready: VecDeque::new(),
            unfiled: None,
            lagged: false,
            gap_wait: opened.gap_wait,
            ended: false,
            lease: Some(opened.lease),
        }
    }

    /// The user this feed belongs to.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// The login this feed belongs to, if it was opened for one.
    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    /// The next event for this user, waiting for one; `None` once the feed has ended (its
    /// login ended, the bus is gone, or the store failed). Cancel safe.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(answer) = self.before_bus().await {
                return answer;
            }
            let step = match self.gap_deadline() {
                Some(deadline) => tokio::select! {
                    delivery = self.events.next() => Step::Bus(delivery),
                    () = tokio::time::sleep_until(deadline) => Step::GapOverdue,
                },
                None => Step::Bus(self.events.next().await),
            };
            self.take(step).await;
        }
    }

    /// The next event if one is ready without waiting for the bus (it may still read the
    /// store); `None` when there is none now.
    pub async fn try_recv(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(answer) = self.before_bus().await {
                return answer;
            }
            let overdue = self
                .gap_deadline()
                .is_some_and(|deadline| deadline <= Instant::now());
            let step = if overdue {
                Step::GapOverdue
            } else {
                // Unconstrained: tokio's cooperative budget would otherwise make a ready
                // event look pending after a hundred or so.
                Step::Bus(tokio::task::unconstrained(self.events.next()).now_or_never()?)
            };
            self.take(step).await;
        }
    }

    /// What must be handed out or finished before the bus is read again: `Some(answer)` for
    /// `recv` to return, `None` to read the bus.
    async fn before_bus(&mut self) -> Option<Option<Arc<Event>>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(Some(seen_by(event, self.user)));
            }
            if self.ended {
                return Some(None);
            }
            if self.unfiled.is_none() && !self.lagged {
                return None;
            }
            self.settle().await;
        }
    }

    /// Ends the feed now, and with it the user's connection on this engine.
    pub async fn close(mut self) {
        if let Some(lease) = self.lease.take() {
            lease.close().await;
        }
    }

    /// Records what woke the feed, before anything is awaited, then acts on it.
    async fn take(&mut self, step: Step) {
        match step {
            Step::Bus(None) => self.ended = true,
            Step::Bus(Some(Delivery::Lagged)) => self.lagged = true,
            Step::Bus(Some(Delivery::Event(event))) => self.unfiled = Some(event),
            Step::GapOverdue => {
                // What is overdue stays overdue until filled: a cancelled fill is redone.
                let outcome = self.fill_overdue().await;
                self.check(outcome);
                return;
            }
        }
        self.settle().await;
    }

    /// Completes a resync or the filing of an event; each may be cancelled and redone, since
    /// each changes the feed only after its last read.
    async fn settle(&mut self) {
        // Never both at once: an unfiled event is settled before the bus is read again.
        let outcome = if self.lagged {
            self.resync().await.map(|()| self.lagged = false)
        } else if let Some(event) = self.unfiled.clone() {
            self.admit(event).await.map(|()| self.unfiled = None)
        } else {
            Ok(())
        };
        self.check(outcome);
    }

    fn check(&mut self, outcome: Result<(), StoreError>) {
        if let Err(error) = outcome {
            tracing::warn!(%error, user = %self.user, "a live feed could not read the store; ending it");
            self.ended = true;
        }
    }

    /// When the longest wait for a missing number runs out.
    fn gap_deadline(&self) -> Option<Instant> {
        self.waiting
            .values()
            .min()
            .map(|since| *since + self.gap_wait)
    }

    /// Files one event from the bus: hands it out, holds it, or drops it.
    async fn admit(&mut self, event: Arc<Event>) -> Result<(), StoreError> {
        match &*event {
            Event::LoginEnded {
                user_id,
                session_id,
            } => {
                let mine =
                    *user_id == self.user && (session_id.is_none() || *session_id == self.session);
                if mine {
                    self.end_login();
                }
            }
            Event::MessageCreated { message } => {
                let room = message.room_id;
                let Some(feed) = self.rooms.get_mut(&room) else {
                    return Ok(());
                };
                if message.seq <= feed.delivered {
                    return Ok(()); // delivered already, from the store or an earlier copy
                }
                feed.held.insert(message.seq, Arc::clone(&event));
                let crowded = feed.held.len() > MAX_HELD;
                self.release(room);
                if crowded {
                    self.fill(room).await?;
                }
            }
            Event::MessageUpdated { message } | Event::MessageDeleted { message } => {
                let Some(feed) = self.rooms.get(&message.room_id) else {
                    return Ok(());
                };
                // The message's creation comes first, whatever the order of arrival.
                if message.seq > feed.delivered {
                    self.fill_through(message.room_id, message.seq).await?;
                }
                self.ready.push_back(event);
            }
            Event::ReactionAdded { reaction } | Event::ReactionRemoved { reaction } => {
                let Some(feed) = self.rooms.get(&reaction.room_id) else {
                    return Ok(());
                };
                // After the message's creation, as for its edits.
                if reaction.seq > feed.delivered {
                    self.fill_through(reaction.room_id, reaction.seq).await?;
                }
                self.ready.push_back(event);
            }
            Event::MemberJoined { member } if member.user_id == self.user => {
                // The member's marker starts at the room's newest message when it joined.
                self.rooms
                    .entry(member.room_id)
                    .or_insert_with(|| RoomFeed::after(member.last_read_seq));
                self.ready.push_back(event);
            }
            Event::MemberLeft {
                room_id, user_id, ..
            } if *user_id == self.user => {
                if self.forget(*room_id) {
                    self.ready.push_back(event);
                }
            }
            Event::RoomDeleted { room_id } => {
                if self.forget(*room_id) {
                    self.ready.push_back(event);
                }
            }
            Event::Resync => self.ready.push_back(event),
            other => {
                if other
                    .room_id()
                    .is_some_and(|room| self.rooms.contains_key(&room))
                {
                    self.ready.push_back(event);
                }
            }
        }
        Ok(())
    }

    fn end_login(&mut self) {
        self.ready.push_back(Arc::new(Event::LoginEnded {
            user_id: self.user,
            session_id: self.session,
        }));
        self.ended = true;
    }

    /// Stops following a room; whether it was followed.
    fn forget(&mut self, room: RoomId) -> bool {
        self.waiting.remove(&room);
        self.rooms.remove(&room).is_some()
    }

    /// Hands out the room's held events that follow on from what was delivered.
    fn release(&mut self, room: RoomId) {
        let Some(feed) = self.rooms.get_mut(&room) else {
            return;
        };
        let mut released = false;
        while let Some(event) = feed.held.remove(&(feed.delivered + 1)) {
            feed.delivered += 1;
            self.ready.push_back(event);
            released = true;
        }
        if feed.held.is_empty() {
            self.waiting.remove(&room);
        } else if released || !self.waiting.contains_key(&room) {
            self.waiting.insert(room, Instant::now());
        }
    }

    async fn fill_overdue(&mut self) -> Result<(), StoreError> {
        let now = Instant::now();
        let overdue: Vec<RoomId> = self
            .waiting
            .iter()
            .filter(|(_, since)| **since + self.gap_wait <= now)
            .map(|(room, _)| *room)
            .collect();
        for room in overdue {
            self.fill(room).await?;
        }
        Ok(())
    }

    /// Delivers everything up to the room's highest held event, reading what is missing.
    async fn fill(&mut self, room: RoomId) -> Result<(), StoreError> {
        let highest = self
            .rooms
            .get(&room)
            .and_then(|feed| feed.held.keys().next_back().copied());
        match highest {
            Some(through) => self.fill_through(room, through).await,
            None => {
                self.waiting.remove(&room);
                Ok(())
            }
        }
    }

    /// Delivers the room's messages up to `through`, in order: held events where they arrived,
    /// the store's copy where they did not.
    async fn fill_through(&mut self, room: RoomId, through: u64) -> Result<(), StoreError> {
        let Some(delivered) = self.rooms.get(&room).map(|feed| feed.delivered) else {
            return Ok(());
        };
        if through <= delivered {
            return Ok(());
        }
        // What must come from the store is what was not held; a few missing numbers behind
        // many held events are read, not given up on.
        let held = self.rooms.get(&room).map_or(0, |feed| {
            feed.held.range(delivered + 1..=through).count() as u64
        });
        let from = if (through - delivered).saturating_sub(held) > MAX_FILL {
            // Too far behind to replay here: the client catches up from the store.
            self.ready.push_back(Arc::new(Event::Resync));
            through - MAX_FILL
        } else {
            delivered
        };
        tracing::debug!(%room, after = from, through, "filling a gap in a live feed from the store");
        let range = SeqRange {
            after: Some(from),
            before: Some(through + 1),
            limit: u32::try_from(through - from).unwrap_or(u32::MAX),
        };
        let mut stored: BTreeMap<u64, _> = self
            .store
            .messages(room, range)
            .await?
            .into_iter()
            .map(|message| (message.seq, message))
            .collect();
        // The room may have been left while the store was read.
        let Some(feed) = self.rooms.get_mut(&room) else {
            return Ok(());
        };
        for seq in from + 1..=through {
            let event = feed.held.remove(&seq).or_else(|| {
                stored
                    .remove(&seq)
                    .map(|message| Arc::new(Event::MessageCreated { message }))
            });
            if let Some(event) = event {
                self.ready.push_back(event);
            }
        }
        feed.held.retain(|seq, _| *seq > through);
        feed.delivered = feed.delivered.max(through);
        self.release(room);
        Ok(())
    }

    /// After the bus dropped events: the user's rooms and login as the store has them now.
    async fn resync(&mut self) -> Result<(), StoreError> {
        let standing = match self.session {
            Some(session) => self.store.session_active(session, self.clock.now()).await?,
            None => self.store.user(self.user).await?.is_some(),
        };
        if !standing {
            self.end_login();
            return Ok(());
        }
        // Each room continues from its newest message now: what came before, the client reads
        // from the store when it hears `Resync`.
        let memberships = self.store.rooms_of_user(self.user, &RoomQuery::ALL).await?;
        let mut rooms = HashMap::with_capacity(memberships.len());
        for (room, _) in memberships {
            let mut feed = RoomFeed::after(room.last_seq);
            if let Some(old) = self.rooms.remove(&room.id) {
                feed.held = old.held;
                feed.held.retain(|seq, _| *seq > room.last_seq);
            }
            rooms.insert(room.id, feed);
        }
        self.rooms = rooms;
        self.waiting.clear();
        self.ready.push_back(Arc::new(Event::Resync));
        let held: Vec<RoomId> = self
            .rooms
            .iter()
            .filter(|(_, feed)| !feed.held.is_empty())
            .map(|(room, _)| *room)
            .collect();
        for room in held {
            self.release(room);
        }
        Ok(())
    }
}

/// The event as `viewer` may see it: a message's transaction id is its sender's alone (see
/// [`Message::seen_by`](crate::Message::seen_by)); shared events are copied only then.
fn seen_by(event: Arc<Event>, viewer: UserId) -> Arc<Event> {
    let hide = |m: &crate::Message| m.txn_id.is_some() && m.sender != viewer;
    let seen = |m: &crate::Message| m.clone().seen_by(viewer);
    match &*event {
        Event::MessageCreated { message } if hide(message) => Arc::new(Event::MessageCreated {
            message: seen(message),
        }),
        Event::MessageUpdated { message } if hide(message) => Arc::new(Event::MessageUpdated {
            message: seen(message),
        }),
        Event::MessageDeleted { message } if hide(message) => Arc::new(Event::MessageDeleted {
            message: seen(message),
        }),
        _ => event,
    }
}
