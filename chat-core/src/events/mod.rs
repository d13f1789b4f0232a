//! Live delivery: the events every state change publishes, the bus that carries them between
//! engines, and the per-user subscription that filters and orders them.
//!
//! The store is the truth; the bus carries news of it. A [`Subscription`] delivers each room's
//! new messages in sequence order, exactly once: an event that arrives early waits for the
//! ones before it, and a number that never arrives (published by no one, or lost) is read from
//! the store after [`ChatConfig::gap_wait`](crate::ChatConfig::gap_wait). When the bus drops
//! events, the subscription re-reads the user's rooms and logins from the store and says
//! [`Event::Resync`].

mod bus;
pub(crate) mod subscription;

use serde::{Deserialize, Serialize};

pub use self::bus::{BusNode, Delivery, EventBus, EventStream, InProcessBus, NodeFanOut};
pub use self::subscription::Subscription;
use crate::ids::{MessageId, RoomId, SessionId, UserId};
use crate::message::Message;
use crate::room::{Member, Room};
use crate::user::Status;

/// A reaction added or taken back: what [`Event::ReactionAdded`] and
/// [`Event::ReactionRemoved`] carry. Counts are the reader's to keep (or to read again with the
/// message); the message's change cursor moved with it, so the change feed has it too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactionChange {
    /// The room.
    pub room_id: RoomId,
    /// The message.
    pub message_id: MessageId,
    /// The message's sequence number.
    pub seq: u64,
    /// The message's change cursor after the change.
    pub change_id: u64,
    /// Who reacted.
    pub user_id: UserId,
    /// The reaction.
    pub key: String,
}

/// Something that happened. Serialized with a `type` tag whose values are the event names
/// ([`Event::name`]), the same words as the WebSocket frames of `chat-http`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
#[non_exhaustive]
pub enum Event {
    /// A message was sent.
    #[serde(rename = "message.created")]
    MessageCreated {
        /// The stored message (its room, sequence number and change cursor included).
        message: Message,
    },
    /// A message was edited.
    #[serde(rename = "message.updated")]
    MessageUpdated {
        /// The message after the edit.
        message: Message,
    },
    /// A message was deleted.
    #[serde(rename = "message.deleted")]
    MessageDeleted {
        /// The tombstone.
        message: Message,
    },
    /// A member reacted to a message.
    #[serde(rename = "reaction.added")]
    ReactionAdded {
        /// Who reacted, how, and to what.
        reaction: ReactionChange,
    },
    /// A member took a reaction back.
    #[serde(rename = "reaction.removed")]
    ReactionRemoved {
        /// Whose reaction, which, and on what.
        reaction: ReactionChange,
    },
    /// A user joined or was added to a room (also each member of a new room).
    #[serde(rename = "member.joined")]
    MemberJoined {
        /// The new membership.
        member: Member,
    },
    /// A user left or was removed from a room.
    #[serde(rename = "member.left")]
    MemberLeft {
        /// The room.
        room_id: RoomId,
        /// Who left.
        user_id: UserId,
        /// Who removed them, when it was not themselves.
        removed_by: Option<UserId>,
    },
    /// A member's role changed (including a change of owner).
    #[serde(rename = "member.updated")]
    MemberUpdated {
        /// The membership after the change.
        member: Member,
    },
    /// A room's fields changed.
    #[serde(rename = "room.updated")]
    RoomUpdated {
        /// The room after the change.
        room: Room,
    },
    /// A room was deleted with its messages.
    #[serde(rename = "room.deleted")]
    RoomDeleted {
        /// The room.
        room_id: RoomId,
    },
    /// A member's read marker moved.
    #[serde(rename = "read.updated")]
    ReadUpdated {
        /// The room.
        room_id: RoomId,
        /// Whose marker.
        user_id: UserId,
        /// The new marker.
        last_read_seq: u64,
    },
    /// A member started or stopped typing.
    #[serde(rename = "typing")]
    Typing {
        /// The room.
        room_id: RoomId,
        /// Who is typing.
        user_id: UserId,
        /// Started (true) or stopped.
        typing: bool,
    },
    /// A member's status changed; published once per room the user is in.
    #[serde(rename = "status.updated")]
    StatusUpdated {
        /// The room.
        room_id: RoomId,
        /// Whose status.
        user_id: UserId,
        /// The new status.
        status: Status,
        /// The new status message.
        status_message: Option<String>,
        /// Whether the user has a live connection, on any engine.
        online: bool,
    },
    /// One login of a user ended (logout, a replayed refresh token), or all of them
    /// (`session_id: None`: password change, account deleted). Every subscription of that
    /// login hears this last and then ends.
    #[serde(rename = "login.ended")]
    LoginEnded {
        /// The user.
        user_id: UserId,
        /// The login, or `None` for every login of the user.
        session_id: Option<SessionId>,
    },
    /// A login exchanged its refresh token (see [`Chat::refresh`](crate::Chat::refresh)), so its
    /// previous access token stopped working. A hint between engines, for their caches of
    /// access tokens; subscriptions do not deliver it.
    #[serde(rename = "login.refreshed")]
    LoginRefreshed {
        /// The user.
        user_id: UserId,
        /// The login.
        session_id: SessionId,
    },
    /// The subscriber fell behind and events were dropped: refetch state (room lists, unread
    /// counts, [`Chat::changes`](crate::Chat::changes) from the last cursor seen). The
    /// subscription itself already follows the rooms the user is in now.
    #[serde(rename = "resync")]
    Resync,
}

impl Event {
    /// The event's name, the `type` of its serialized form and of its WebSocket frame.
    pub fn name(&self) -> &'static str {
        match self {
            Self::MessageCreated { .. } => "message.created",
            Self::MessageUpdated { .. } => "message.updated",
            Self::MessageDeleted { .. } => "message.deleted",
            Self::ReactionAdded { .. } => "reaction.added",
            Self::ReactionRemoved { .. } => "reaction.removed",
            Self::MemberJoined { .. } => "member.joined",
            Self::MemberLeft { .. } => "member.left",
            Self::MemberUpdated { .. } => "member.updated",
            Self::RoomUpdated { .. } => "room.updated",
            Self::RoomDeleted { .. } => "room.deleted",
            Self::ReadUpdated { .. } => "read.updated",
            Self::Typing { .. } => "typing",
            Self::StatusUpdated { .. } => "status.updated",
            Self::LoginEnded { .. } => "login.ended",
            Self::LoginRefreshed { .. } => "login.refreshed",
            Self::Resync => "resync",
        }
    }

    /// The room the event belongs to; `None` for the events of logins and [`Event::Resync`].
    pub fn room_id(&self) -> Option<RoomId> {
        match self {
            Self::MessageCreated { message }
            | Self::MessageUpdated { message }
            | Self::MessageDeleted { message } => Some(message.room_id),
            Self::ReactionAdded { reaction } | Self::ReactionRemoved { reaction } => {
                Some(reaction.room_id)
            }
            Self::MemberJoined { member } | Self::MemberUpdated { member } => Some(member.room_id),
            Self::RoomUpdated { room } => Some(room.id),
            Self::MemberLeft { room_id, .. }
            | Self::RoomDeleted { room_id }
            | Self::ReadUpdated { room_id, .. }
            | Self::Typing { room_id, .. }
            | Self::StatusUpdated { room_id, .. } => Some(*room_id),
            Self::LoginEnded { .. } | Self::LoginRefreshed { .. } | Self::Resync => None,
        }
    }

    /// The id of the message the event is about, if any.
    pub fn message_id(&self) -> Option<MessageId> {
        match self {
            Self::MessageCreated { message }
            | Self::MessageUpdated { message }
            | Self::MessageDeleted { message } => Some(message.id),
            Self::ReactionAdded { reaction } | Self::ReactionRemoved { reaction } => {
                Some(reaction.message_id)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_under_their_names_and_back() {
        let user_id = UserId(uuid::Uuid::from_u128(7));
        let events = [
            Event::LoginEnded {
                user_id,
                session_id: None,
            },
            Event::Typing {
                room_id: RoomId(uuid::Uuid::from_u128(1)),
                user_id,
                typing: true,
            },
            Event::Resync,
        ];
        for event in events {
            let json = serde_json::to_value(&event).unwrap();
            assert_eq!(json["type"], event.name());
            assert_eq!(serde_json::from_value::<Event>(json).unwrap(), event);
        }
    }
}
