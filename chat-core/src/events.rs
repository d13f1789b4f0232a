//! Live delivery: the events every state change publishes, the bus that carries them, and the
//! per-user subscription that filters them.

use std::collections::HashSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::ids::{MessageId, RoomId, UserId};
use crate::message::Message;
use crate::room::{Member, Room};
use crate::user::Presence;

/// Something that happened in a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A message was sent.
    MessageCreated {
        /// The stored message.
        message: Message,
    },
    /// A message was edited.
    MessageEdited {
        /// The message after the edit.
        message: Message,
    },
    /// A message was deleted.
    MessageDeleted {
        /// The tombstone.
        message: Message,
    },
    /// A user joined or was added to a room (also each member of a new room).
    MemberJoined {
        /// The new membership.
        member: Member,
    },
    /// A user left or was removed from a room.
    MemberLeft {
        /// The room.
        room_id: RoomId,
        /// Who left.
        user_id: UserId,
        /// Who removed them, when it was not themselves.
        removed_by: Option<UserId>,
    },
    /// A member's role changed (including a change of owner).
    MemberUpdated {
        /// The membership after the change.
        member: Member,
    },
    /// A room's fields changed.
    RoomUpdated {
        /// The room after the change.
        room: Room,
    },
    /// A room was deleted with its messages.
    RoomDeleted {
        /// The room.
        room_id: RoomId,
    },
    /// A member's read marker moved.
    ReadMarker {
        /// The room.
        room_id: RoomId,
        /// Whose marker.
        user_id: UserId,
        /// The new marker.
        last_read_seq: u64,
    },
    /// A member started or stopped typing.
    Typing {
        /// The room.
        room_id: RoomId,
        /// Who is typing.
        user_id: UserId,
        /// Started (true) or stopped.
        typing: bool,
    },
    /// A member's presence changed; published once per room the user is in.
    Presence {
        /// The room.
        room_id: RoomId,
        /// Whose presence.
        user_id: UserId,
        /// The new presence.
        presence: Presence,
        /// The new status message.
        status_message: Option<String>,
    },
    /// The subscriber fell behind and events were dropped: refetch state (room lists, unread
    /// counts, [`Chat::changes`](crate::Chat::changes) from the last cursor seen).
    Resync,
}

impl Event {
    /// The room the event belongs to; `None` only for [`Event::Resync`].
    pub fn room_id(&self) -> Option<RoomId> {
        match self {
            Self::MessageCreated { message }
            | Self::MessageEdited { message }
            | Self::MessageDeleted { message } => Some(message.room_id),
            Self::MemberJoined { member } | Self::MemberUpdated { member } => Some(member.room_id),
            Self::RoomUpdated { room } => Some(room.id),
            Self::MemberLeft { room_id, .. }
            | Self::RoomDeleted { room_id }
            | Self::ReadMarker { room_id, .. }
            | Self::Typing { room_id, .. }
            | Self::Presence { room_id, .. } => Some(*room_id),
            Self::Resync => None,
        }
    }

    /// The id of the message the event is about, if any.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            Self::MessageCreated { message }
            | Self::MessageEdited { message }
            | Self::MessageDeleted { message } => Some(message.id),
            _ => None,
        }
    }
}

/// Carries events from the [`Chat`](crate::Chat) that publishes them to every subscriber.
///
/// The default, [`InProcessBus`], serves one process; a bus over a database's notifications
/// lets several servers share one store.
pub trait EventBus: Send + Sync + 'static {
    /// Publishes an event to every current subscriber. Never blocks, whatever the subscribers do.
    fn publish(&self, event: Arc<Event>);

    /// A receiver of every event published from now on. A receiver that falls behind by more
    /// than the bus holds sees `RecvError::Lagged` and misses the oldest events.
    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>>;
}

/// An in-process bus over a tokio broadcast channel.
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

impl EventBus for InProcessBus {
    fn publish(&self, event: Arc<Event>) {
        // An error only means that nobody is subscribed right now.
        let _ = self.sender.send(event);
    }

    fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.sender.subscribe()
    }
}

/// One user's live feed: only events of rooms the user belongs to, kept up to date as the user
/// joins and leaves rooms. Made by [`Chat::subscribe`](crate::Chat::subscribe).
#[derive(Debug)]
pub struct Subscription {
    user: UserId,
    rooms: HashSet<RoomId>,
    receiver: broadcast::Receiver<Arc<Event>>,
}

impl Subscription {
    /// `receiver` must have been subscribed before `rooms` was read, so that no membership
    /// change falls between the two.
    pub(crate) fn new(
        user: UserId,
        rooms: HashSet<RoomId>,
        receiver: broadcast::Receiver<Arc<Event>>,
    ) -> Self {
        Self {
            user,
            rooms,
            receiver,
        }
    }

    /// The user this feed belongs to.
    pub fn user(&self) -> UserId {
        self.user
    }

    /// The next event for this user, waiting for one; `None` once the bus is gone.
    ///
    /// After falling behind, the next event is [`Event::Resync`]: the rooms this feed follows
    /// may then be out of date, so a client should subscribe again and refetch.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.receiver.recv().await {
                Ok(event) => {
                    if self.admit(&event) {
                        return Some(event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    return Some(Arc::new(Event::Resync));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The next event if one is ready now, without waiting.
    pub fn try_recv(&mut self) -> Option<Arc<Event>> {
        loop {
            match self.receiver.try_recv() {
                Ok(event) => {
                    if self.admit(&event) {
                        return Some(event);
                    }
                }
                Err(broadcast::error::TryRecvError::Lagged(_)) => {
                    return Some(Arc::new(Event::Resync));
                }
                Err(_) => return None,
            }
        }
    }

    /// Whether the event is for this user, updating the followed rooms on the way.
    fn admit(&mut self, event: &Event) -> bool {
        let Some(room_id) = event.room_id() else {
            return true;
        };
        match event {
            Event::MemberJoined { member } if member.user_id == self.user => {
                self.rooms.insert(room_id);
                true
            }
            Event::MemberLeft { user_id, .. } if *user_id == self.user => {
                self.rooms.remove(&room_id)
            }
            Event::RoomDeleted { .. } => self.rooms.remove(&room_id),
            _ => self.rooms.contains(&room_id),
        }
    }
}
