//! Messages, history pages, changes and read state.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, RoomId, UserId};
use crate::room::Room;
use crate::user::DirectoryEntry;

/// One reaction key on a message as a reader sees it: how many members reacted with it, and
/// whether the reader is one of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The reaction: an emoji or a shortcode.
    pub key: String,
    /// How many members reacted with it (at least 1).
    pub count: u32,
    /// Whether the reader did.
    pub me: bool,
}

/// A thread's summary, kept on its root message: counted as each reply is stored, so reading
/// it costs nothing however long the thread.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadSummary {
    /// Replies in the thread (deleted ones keep their place, as in the room).
    pub reply_count: u64,
    /// The newest reply's sequence number: where the thread stands among the room's threads.
    pub last_reply_seq: u64,
    /// When the newest reply was sent.
    pub last_reply_at: DateTime<Utc>,
    /// The first [`ThreadSummary::MAX_PARTICIPANTS`] different repliers, in order of their
    /// first reply.
    pub participants: Vec<UserId>,
}

impl ThreadSummary {
    /// How many repliers a summary names.
    pub const MAX_PARTICIPANTS: usize = 10;

    /// The summary once `reply`, a new reply in the thread, is counted: for stores that keep
    /// the summary as one value.
    pub fn counting(summary: Option<Self>, reply: &Message) -> Self {
        let (sender, at) = (reply.sender, reply.created_at);
        let mut summary = summary.unwrap_or(Self {
            reply_count: 0,
            last_reply_seq: reply.seq,
            last_reply_at: at,
            participants: Vec::new(),
        });
        summary.reply_count += 1;
        summary.last_reply_seq = reply.seq;
        summary.last_reply_at = at;
        if summary.participants.len() < Self::MAX_PARTICIPANTS
            && !summary.participants.contains(&sender)
        {
            summary.participants.push(sender);
        }
        summary
    }
}

/// A message in a room or direct conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The message's id.
    pub id: MessageId,
    /// The room it was sent to.
    pub room_id: RoomId,
    /// Its position in the room: 1, 2, 3… with no gaps.
    pub seq: u64,
    /// Who sent it.
    pub sender: UserId,
    /// The text; empty once deleted.
    pub body: String,
    /// The message this one answers, in the same room.
    pub reply_to: Option<MessageId>,
    /// The thread this message is a reply in: its root, a message of the same room.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_root: Option<MessageId>,
    /// On a thread's root, once it has replies: the thread's summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadSummary>,
    /// The members it mentions, as the sender named them (those who were members when it was
    /// sent).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<UserId>,
    /// Whether it mentions every member of the room.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub mentions_room: bool,
    /// The sender's client transaction id, which makes sending idempotent.
    pub txn_id: Option<String>,
    /// Application data attached by the sender; removed on delete.
    pub metadata: Option<serde_json::Value>,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
    /// When it was last edited.
    pub edited_at: Option<DateTime<Utc>>,
    /// When it was deleted; a deleted message is a tombstone that keeps its place.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The room's change cursor at this message's latest change (creation, edit, delete or a
    /// reaction).
    pub change_id: u64,
    /// Its reactions as the reader sees them, by key (bytewise). [`Chat`](crate::Chat) fills
    /// them in on every message it returns; a store leaves them empty and keeps reactions
    /// apart ([`ReactionStore`](crate::store::ReactionStore)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
}

impl Message {
    /// Whether the message was deleted (its body and metadata are gone).
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// The message as `viewer` may see it: the transaction id is its sender's alone (it
    /// matches a retry or a pending message to its acknowledgement), so others get none.
    pub fn seen_by(mut self, viewer: UserId) -> Self {
        if self.sender != viewer {
            self.txn_id = None;
        }
        self
    }
}

/// What a sender provides to send a message.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewMessage {
    /// Non-empty text, at most [`ChatConfig::max_body_chars`](crate::ChatConfig) characters.
    pub body: String,
    /// A message in the same room that this one answers.
    pub reply_to: Option<MessageId>,
    /// The root of the thread this message replies in: a message of the same room that is
    /// not itself a reply in a thread, and not deleted.
    pub thread_root: Option<MessageId>,
    /// Members of the room to mention (at most
    /// [`ChatConfig::max_mentions`](crate::ChatConfig::max_mentions)); users who are not members
    /// are dropped, as are repeats and the sender.
    pub mentions: Vec<UserId>,
    /// Mention every member of the room: for room owners and admins.
    pub mentions_room: bool,
    /// A client transaction id: sending again with the same id returns the first message.
    pub txn_id: Option<String>,
    /// Application data, at most [`ChatConfig::max_metadata_bytes`](crate::ChatConfig) as JSON.
    pub metadata: Option<serde_json::Value>,
}

impl NewMessage {
    /// A plain text message.
    pub fn text(body: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// Sets the client transaction id.
    pub fn with_txn_id(mut self, txn_id: impl Into<String>) -> Self {
        self.txn_id = Some(txn_id.into());
        self
    }

    /// Sets the message this one answers.
    pub fn replying_to(mut self, message: MessageId) -> Self {
        self.reply_to = Some(message);
        self
    }

    /// Makes it a reply in the thread of `root`.
    pub fn in_thread(mut self, root: MessageId) -> Self {
        self.thread_root = Some(root);
        self
    }

    /// Mentions `user`.
    pub fn mentioning(mut self, user: UserId) -> Self {
        self.mentions.push(user);
        self
    }
}

/// The outcome of a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// The stored message.
    pub message: Message,
    /// False when the transaction id had been seen and this is the original message.
    pub created: bool,
}

/// Which slice of a room's history to read, by sequence number (keyset paging).
///
/// With `after`, the oldest `limit` messages after it; otherwise the newest `limit` messages
/// before `before` (or the newest of all). Both bound the range. Pages are oldest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistoryQuery {
    /// Only messages with a smaller sequence number.
    pub before: Option<u64>,
    /// Only messages with a larger sequence number.
    pub after: Option<u64>,
    /// At most this many (the configured default when `None`).
    pub limit: Option<u32>,
}

impl HistoryQuery {
    /// The newest `limit` messages.
    pub fn newest(limit: u32) -> Self {
        Self {
            limit: Some(limit),
            ..Self::default()
        }
    }

    /// The newest `limit` messages before `seq`.
    pub fn before(seq: u64, limit: u32) -> Self {
        Self {
            before: Some(seq),
            limit: Some(limit),
            ..Self::default()
        }
    }

    /// The oldest `limit` messages after `seq`.
    pub fn after(seq: u64, limit: u32) -> Self {
        Self {
            after: Some(seq),
            limit: Some(limit),
            ..Self::default()
        }
    }
}

/// A user's read state in one room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    /// The room.
    pub room_id: RoomId,
    /// The sequence number of the last message the user has read.
    pub last_read_seq: u64,
    /// The sequence number of the room's newest message.
    pub last_seq: u64,
    /// Messages after the marker: `last_seq - last_read_seq`.
    pub unread: u64,
    /// How many of them mention the user.
    pub mentions: u64,
    /// Unread replies in the room's threads the user follows.
    pub threads: u64,
}

/// Unread counts across all of a user's rooms.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadSummary {
    /// The sum over all rooms.
    pub total: u64,
    /// Unread messages that mention the user, over all rooms.
    pub mentions: u64,
    /// Unread replies in threads the user follows, over all rooms.
    pub threads: u64,
    /// Rooms with anything unread, each with its counts.
    pub rooms: Vec<RoomUnread>,
}

/// One room's line in an [`UnreadSummary`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomUnread {
    /// The room.
    pub room_id: RoomId,
    /// How many messages after the user's marker.
    pub unread: u64,
    /// How many of them mention the user.
    pub mentions: u64,
    /// Unread replies in the room's threads the user follows.
    pub threads: u64,
}

/// A user's mention and thread counts in one room, as a store counts them: unread messages
/// that mention the user, and unread replies in threads the user follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadCounts {
    /// The room.
    pub room_id: RoomId,
    /// Messages after the user's read marker that mention the user.
    pub mentions: u64,
    /// Replies after the user's thread markers in the threads the user follows.
    pub threads: u64,
}

/// One of a room's threads as a reader sees it: its root (with the summary) and the reader's
/// unread replies in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thread {
    /// The root message, whose `thread` is the summary.
    pub root: Message,
    /// Replies after the reader's marker in this thread.
    pub unread: u64,
}

/// One of "my direct conversations".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectConversation {
    /// The conversation's room.
    pub room: Room,
    /// The other person; `None` once that user was deleted.
    pub other: Option<DirectoryEntry>,
    /// The newest message, if any.
    pub last_message: Option<Message>,
    /// Messages the user has not read.
    pub unread: u64,
}
