//! Export: the whole chat as JSON Lines, from any [`Store`], in a format every store can
//! import.
//!
//! The first line is a [`Record::Header`]; then every user (with its password hash), then each
//! room followed by its members (with their read markers), its messages in sequence order
//! (ids, sequence numbers, transaction ids, replies, threads, mentions and whom they count
//! for, edits, tombstones, metadata), who reacted with what, and its thread markers; the last line is a
//! [`Record::End`] with the totals, so a truncated file is told from a whole one. Logins and
//! tickets are not exported. The store is read in pages and each record is written as it is read, so memory
//! stays flat however large the chat.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{MemberQuery, SeqRange, Store, ThreadMarker, UserQuery};
use crate::{Member, MemberCursor, Message, Room, RoomId, User, UserId};

/// What the header's `format` says.
pub const FORMAT: &str = "chat-export";
/// The format's version; a reader refuses a newer one.
pub const VERSION: u32 = 1;

/// Records read from the store per call.
const PAGE: u32 = 1000;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Record {
    /// The first line: what the file is, from which store, and when.
    Header {
        /// [`FORMAT`].
        format: String,
        /// [`VERSION`].
        version: u32,
        /// The store it came from (its URL without credentials, or a name).
        source: String,
        /// When the export started.
        exported_at: DateTime<Utc>,
    },
    /// A user and its password hash (none for users without a password).
    User {
        /// The user.
        user: User,
        /// Its password hash, as stored.
        password_hash: Option<String>,
    },
    /// A room, group or direct, with its counters and password hash.
    Room {
        /// The room (its serialized form leaves the password hash out).
        room: Room,
        /// Its join password's hash, as stored.
        password_hash: Option<String>,
    },
    /// A membership, with its role and read marker.
    Member {
        /// The member.
        member: Member,
    },
    /// A message of the room before it, tombstones included, in sequence order.
    Message {
        /// The message (without reactions: those are [`Record::Reaction`]s).
        message: Message,
        /// The members it counts as a mention of (in their unread mentions): those it names,
        /// or everyone when it mentions the room, who were members when it was sent and still
        /// are.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentioned: Vec<UserId>,
    },
    /// A member's reaction to a message of the room.
    Reaction {
        /// The room.
        room_id: RoomId,
        /// The message, by its sequence number.
        seq: u64,
        /// The reaction.
        key: String,
        /// Who reacted.
        user_id: UserId,
    },
    /// A member's place in a thread of the room.
    ThreadMarker {
        /// The room.
        room_id: RoomId,
        /// The marker.
        marker: ThreadMarker,
    },
    /// The last line: what the file holds, so that a reader knows it has all of it.
    End {
        /// The records of each kind written before it.
        totals: Totals,
    },
}

/// How much an export wrote (or an import read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Users written.
    pub users: u64,
    /// Rooms written.
    pub rooms: u64,
    /// Memberships written.
    pub members: u64,
    /// Messages written, tombstones included.
    pub messages: u64,
    /// Reactions written (one per member, key and message).
    pub reactions: u64,
    /// Thread markers written.
    pub thread_markers: u64,
}

impl std::fmt::Display for Totals {
    /// `3 users, 2 rooms, 5 members, 5 messages, 3 reactions, 3 thread markers`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Self {
            users,
            rooms,
            members,
            messages,
            reactions,
            thread_markers,
        } = self;
        write!(
            f,
            "{users} users, {rooms} rooms, {members} members, {messages} messages, \
             {reactions} reactions, {thread_markers} thread markers"
        )
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading the store failed.
    #[error("reading the store: {0}")]
    Store(#[from] crate::StoreError),
    /// Writing the output failed.
    #[error("writing the export: {0}")]
    Write(#[from] std::io::Error),
    /// A record could not be encoded.
    #[error("encoding a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Writes the whole chat in `store` to `out`, a record per line (see the [module](self)).
/// `source` names the store in the header; `progress` is called with the totals so far after
/// each page of messages.
pub async fn export(
    store: &dyn Store,
    source: &str,
    exported_at: DateTime<Utc>,
    out: &mut dyn Write,
    mut progress: impl FnMut(&Totals),
) -> Result<Totals, ExportError> {
    let mut lines = Lines {
        out,
        totals: Totals::default(),
    };
    lines.write(&Record::Header {
        format: FORMAT.into(),
        version: VERSION,
        source: source.into(),
        exported_at,
    })?;
    export_users(store, &mut lines).await?;
    let mut after = None;
    loop {
        let rooms = store.list_rooms(after, PAGE).await?;
        let Some(last) = rooms.last() else { break };
        after = Some(last.id);
        for room in rooms {
            export_room(store, room, &mut lines, &mut progress).await?;
        }
    }
    let totals = lines.totals;
    lines.write(&Record::End { totals })?;
    lines.out.flush()?;
    Ok(totals)
}

/// The output, and what has gone into it.
struct Lines<'a> {
    out: &'a mut dyn Write,
    totals: Totals,
}

impl Lines<'_> {
    fn write(&mut self, record: &Record) -> Result<(), ExportError> {
        serde_json::to_writer(&mut *self.out, record)?;
        self.out.write_all(b"\n")?;
        self.totals.count(record);
        Ok(())
    }
}

impl Totals {
    /// Counts `record` in its kind's total.
    pub(crate) fn count(&mut self, record: &Record) {
        match record {
            Record::Header { .. } | Record::End { .. } => {}
            Record::User { .. } => self.users += 1,
            Record::Room { .. } => self.rooms += 1,
            Record::Member { .. } => self.members += 1,
            Record::Message { .. } => self.messages += 1,
            Record::Reaction { .. } => self.reactions += 1,
            Record::ThreadMarker { .. } => self.thread_markers += 1,
        }
    }
}

async fn export_users(store: &dyn Store, lines: &mut Lines<'_>) -> Result<(), ExportError> {
    let mut query = UserQuery {
        search: None,
        after_username: None,
        limit: PAGE,
    };
    loop {
        let users = store.list_users(&query).await?;
        let Some(last) = users.last() else {
            return Ok(());
        };
        query.after_username = Some(last.username.clone());
        for user in users {
            let password_hash = store.password_hash(user.id).await?;
            lines.write(&Record::User {
                user,
                password_hash,
            })?;
        }
    }
}

/// One room: the room, its members, its messages with their reactions, its thread markers.
async fn export_room(
    store: &dyn Store,
    room: Room,
    lines: &mut Lines<'_>,
    progress: &mut impl FnMut(&Totals),
) -> Result<(), ExportError> {
    let id = room.id;
    let password_hash = room.password_hash.clone();
    lines.write(&Record::Room {
        room,
        password_hash,
    })?;
    let mut query = MemberQuery {
        after: None,
        limit: PAGE,
    };
    loop {
        let members = store.members(id, &query).await?;
        let Some(last) = members.last() else { break };
        query.after = Some(MemberCursor::of(last));
        for member in members {
            lines.write(&Record::Member { member })?;
        }
    }
    let mut after = 0;
    loop {
        let range = SeqRange {
            before: None,
            after: Some(after),
            limit: PAGE,
        };
        let messages = store.messages(id, range).await?;
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            break;
        };
        let reactors = store.reactors(id, first.seq..=last.seq).await?;
        let mut mentions = store.mentions_between(id, first.seq..=last.seq).await?;
        after = last.seq;
        mentions.reverse();
        for message in messages {
            let mut mentioned = Vec::new();
            while let Some(mention) = mentions.pop_if(|m| m.seq == message.seq) {
                mentioned.push(mention.user);
            }
            lines.write(&Record::Message { message, mentioned })?;
        }
        for (seq, key, user_id) in reactors {
            let room_id = id;
            lines.write(&Record::Reaction {
                room_id,
                seq,
                key,
                user_id,
            })?;
        }
        progress(&lines.totals);
    }
    for marker in store.thread_markers(id).await? {
        lines.write(&Record::ThreadMarker {
            room_id: id,
            marker,
        })?;
    }
    Ok(())
}
