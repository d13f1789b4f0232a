//! What sled keeps on disk for each core type: record types of this crate's own, frozen with
//! the format version, so that renaming a field of a public type (or of its serde form) cannot
//! silently change the disk format. Enums are stored by their `as_str` names, which are part of
//! the format too: a name this version does not know is an error, never a default.

use chat_core::{
    Member, Message, MessageId, Profile, Role, Room, RoomId, RoomKind, Status, ThreadSummary, User,
    UserId, Visibility,
};
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{StoreResult, backend};

/// A value sled stores: converted to its record for writing, and back after reading.
pub(crate) trait Record: Sized {
    /// The on-disk shape.
    type Stored: Serialize + DeserializeOwned;

    fn to_record(&self) -> Self::Stored;

    fn from_record(stored: Self::Stored) -> StoreResult<Self>;
}

/// The crate's own bookkeeping types are their own records.
macro_rules! own_record {
    ($($ty:ty),*) => {$(
        impl crate::records::Record for $ty {
            type Stored = Self;

            fn to_record(&self) -> Self {
                self.clone()
            }

            fn from_record(stored: Self) -> crate::codec::StoreResult<Self> {
                Ok(stored)
            }
        }
    )*};
}
pub(crate) use own_record;

fn known<T>(parsed: Option<T>, what: &str, name: &str) -> StoreResult<T> {
    parsed.ok_or_else(|| backend(format!("unknown stored {what} {name:?}")))
}

/// A user, format 1.
#[derive(Serialize, Deserialize)]
pub(crate) struct UserV1 {
    id: UserId,
    username: String,
    email: Option<String>,
    display_name: String,
    profile: ProfileV1,
    presence: String,
    status_message: Option<String>,
    is_admin: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Record for User {
    type Stored = UserV1;

    fn to_record(&self) -> UserV1 {
        let profile = self.profile.clone();
        UserV1 {
            id: self.id,
            username: self.username.clone(),
            email: self.email.clone(),
            display_name: self.display_name.clone(),
            profile: ProfileV1 {
                first_name: profile.first_name,
                last_name: profile.last_name,
                phone: profile.phone,
                address: profile.address,
                bio: profile.bio,
            },
            presence: self.status.as_str().to_owned(),
            status_message: self.status_message.clone(),
            is_admin: self.is_admin,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    fn from_record(r: UserV1) -> StoreResult<Self> {
        Ok(User {
            id: r.id,
            username: r.username,
            email: r.email,
            display_name: r.display_name,
            profile: Profile {
                first_name: r.profile.first_name,
                last_name: r.profile.last_name,
                phone: r.profile.phone,
                address: r.profile.address,
                bio: r.profile.bio,
            },
            status: known(Status::parse(&r.presence), "presence", &r.presence)?,
            status_message: r.status_message,
            is_admin: r.is_admin,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A user's profile, format 1.
#[derive(Serialize, Deserialize)]
pub(crate) struct ProfileV1 {
    first_name: Option<String>,
    last_name: Option<String>,
    phone: Option<String>,
    address: Option<String>,
    bio: Option<String>,
}

/// A room and, beside it, its password hash, format 1.
#[derive(Serialize, Deserialize)]
pub(crate) struct RoomV1(RoomFieldsV1, Option<String>);

#[derive(Serialize, Deserialize)]
pub(crate) struct RoomFieldsV1 {
    id: RoomId,
    kind: String,
    name: String,
    topic: Option<String>,
    alias: Option<String>,
    visibility: String,
    capacity: Option<u32>,
    owner: Option<UserId>,
    member_count: u32,
    last_seq: u64,
    last_change: u64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Record for Room {
    type Stored = RoomV1;

    fn to_record(&self) -> RoomV1 {
        let fields = RoomFieldsV1 {
            id: self.id,
            kind: self.kind.as_str().to_owned(),
            name: self.name.clone(),
            topic: self.topic.clone(),
            alias: self.alias.clone(),
            visibility: self.visibility.as_str().to_owned(),
            capacity: self.capacity,
            owner: self.owner,
            member_count: self.member_count,
            last_seq: self.last_seq,
            last_change: self.last_change,
            created_at: self.created_at,
            updated_at: self.updated_at,
        };
        RoomV1(fields, self.password_hash.clone())
    }

    fn from_record(RoomV1(r, password_hash): RoomV1) -> StoreResult<Self> {
        Ok(Room {
            id: r.id,
            kind: known(RoomKind::parse(&r.kind), "room kind", &r.kind)?,
            name: r.name,
            topic: r.topic,
            alias: r.alias,
            visibility: known(
                Visibility::parse(&r.visibility),
                "visibility",
                &r.visibility,
            )?,
            capacity: r.capacity,
            password_hash,
            owner: r.owner,
            member_count: r.member_count,
            last_seq: r.last_seq,
            last_change: r.last_change,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }
}

/// A membership with its read marker, format 1.
#[derive(Serialize, Deserialize)]
pub(crate) struct MemberV1 {
    room_id: RoomId,
    user_id: UserId,
    role: String,
    joined_at: DateTime<Utc>,
    last_read_seq: u64,
}

impl Record for Member {
    type Stored = MemberV1;

    fn to_record(&self) -> MemberV1 {
        MemberV1 {
            room_id: self.room_id,
            user_id: self.user_id,
            role: self.role.as_str().to_owned(),
            joined_at: self.joined_at,
            last_read_seq: self.last_read_seq,
        }
    }

    fn from_record(r: MemberV1) -> StoreResult<Self> {
        Ok(Member {
            room_id: r.room_id,
            user_id: r.user_id,
            role: known(Role::parse(&r.role), "role", &r.role)?,
            joined_at: r.joined_at,
            last_read_seq: r.last_read_seq,
        })
    }
}

/// A message or tombstone, format 1. The thread and mention fields came later: each is left
/// out while empty, so a message without them keeps the bytes it always had, and a record
/// written before them reads as a message without them.
#[derive(Serialize, Deserialize)]
pub(crate) struct MessageV1 {
    id: MessageId,
    room_id: RoomId,
    seq: u64,
    sender: UserId,
    body: String,
    reply_to: Option<MessageId>,
    txn_id: Option<String>,
    metadata: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
    edited_at: Option<DateTime<Utc>>,
    deleted_at: Option<DateTime<Utc>>,
    change_id: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thread_root: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    thread: Option<ThreadSummaryV1>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    mentions: Vec<UserId>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    mentions_room: bool,
}

/// A thread's summary on its root, format 1.
#[derive(Serialize, Deserialize)]
pub(crate) struct ThreadSummaryV1 {
    reply_count: u64,
    last_reply_seq: u64,
    last_reply_at: DateTime<Utc>,
    participants: Vec<UserId>,
}

impl Record for Message {
    type Stored = MessageV1;

    fn to_record(&self) -> MessageV1 {
        let m = self.clone();
        MessageV1 {
            id: m.id,
            room_id: m.room_id,
            seq: m.seq,
            sender: m.sender,
            body: m.body,
            reply_to: m.reply_to,
            txn_id: m.txn_id,
            metadata: m.metadata,
            created_at: m.created_at,
            edited_at: m.edited_at,
            deleted_at: m.deleted_at,
            change_id: m.change_id,
            thread_root: m.thread_root,
            thread: m.thread.map(|t| ThreadSummaryV1 {
                reply_count: t.reply_count,
                last_reply_seq: t.last_reply_seq,
                last_reply_at: t.last_reply_at,
                participants: t.participants,
            }),
            mentions: m.mentions,
            mentions_room: m.mentions_room,
        }
    }

    fn from_record(r: MessageV1) -> StoreResult<Self> {
        Ok(Message {
            id: r.id,
            room_id: r.room_id,
            seq: r.seq,
            sender: r.sender,
            body: r.body,
            reply_to: r.reply_to,
            txn_id: r.txn_id,
            metadata: r.metadata,
            created_at: r.created_at,
            edited_at: r.edited_at,
            deleted_at: r.deleted_at,
            change_id: r.change_id,
            thread_root: r.thread_root,
            thread: r.thread.map(|t| ThreadSummary {
                reply_count: t.reply_count,
                last_reply_seq: t.last_reply_seq,
                last_reply_at: t.last_reply_at,
                participants: t.participants,
            }),
            mentions: r.mentions,
            mentions_room: r.mentions_room,
            reactions: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::codec::{decode, encode};

    fn at(second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, second).unwrap()
    }

    fn id(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    /// Each record in its format-1 bytes, as every version so far has written them: what a
    /// directory written before must still read, and what is written now.
    fn pinned<T: Record + PartialEq + std::fmt::Debug>(value: T, bytes: &str) {
        assert_eq!(String::from_utf8(encode(&value).unwrap()).unwrap(), bytes);
        assert_eq!(decode::<T>(bytes.as_bytes()).unwrap(), value);
    }

    #[test]
    fn records_keep_format_one() {
        let user = User {
            id: UserId(id(1)),
            username: "alice".into(),
            email: Some("a@example.com".into()),
            display_name: "Alice".into(),
            profile: Profile {
                bio: Some("hi".into()),
                ..Profile::default()
            },
            status: Status::Busy,
            status_message: None,
            is_admin: true,
            created_at: at(1),
            updated_at: at(2),
        };
        pinned(
            user,
            r#"{"id":"00000000-0000-0000-0000-000000000001","username":"alice","email":"a@example.com","display_name":"Alice","profile":{"first_name":null,"last_name":null,"phone":null,"address":null,"bio":"hi"},"presence":"busy","status_message":null,"is_admin":true,"created_at":"2026-01-02T03:04:01Z","updated_at":"2026-01-02T03:04:02Z"}"#,
        );
        let room = Room {
            id: RoomId(id(2)),
            kind: RoomKind::Group,
            name: "general".into(),
            topic: None,
            alias: Some("gen".into()),
            visibility: Visibility::Private,
            capacity: Some(10),
            password_hash: Some("$argon2id$x".into()),
            owner: Some(UserId(id(1))),
            member_count: 3,
            last_seq: 7,
            last_change: 9,
            created_at: at(3),
            updated_at: at(4),
        };
        pinned(
            room,
            r#"[{"id":"00000000-0000-0000-0000-000000000002","kind":"group","name":"general","topic":null,"alias":"gen","visibility":"private","capacity":10,"owner":"00000000-0000-0000-0000-000000000001","member_count":3,"last_seq":7,"last_change":9,"created_at":"2026-01-02T03:04:03Z","updated_at":"2026-01-02T03:04:04Z"},"$argon2id$x"]"#,
        );
        let member = Member {
            room_id: RoomId(id(2)),
            user_id: UserId(id(1)),
            role: Role::Admin,
            joined_at: at(5),
            last_read_seq: 6,
        };
        pinned(
            member,
            r#"{"room_id":"00000000-0000-0000-0000-000000000002","user_id":"00000000-0000-0000-0000-000000000001","role":"admin","joined_at":"2026-01-02T03:04:05Z","last_read_seq":6}"#,
        );
        let message = Message {
            id: MessageId(id(3)),
            room_id: RoomId(id(2)),
            seq: 7,
            sender: UserId(id(1)),
            body: "héllo".into(),
            reply_to: Some(MessageId(id(4))),
            txn_id: Some("t1".into()),
            metadata: Some(serde_json::json!({"k": [1, 2]})),
            created_at: at(6),
            edited_at: Some(at(7)),
            deleted_at: None,
            change_id: 9,
            thread_root: None,
            thread: None,
            mentions: Vec::new(),
            mentions_room: false,
            reactions: Vec::new(),
        };
        pinned(
            message.clone(),
            r#"{"id":"00000000-0000-0000-0000-000000000003","room_id":"00000000-0000-0000-0000-000000000002","seq":7,"sender":"00000000-0000-0000-0000-000000000001","body":"héllo","reply_to":"00000000-0000-0000-0000-000000000004","txn_id":"t1","metadata":{"k":[1,2]},"created_at":"2026-01-02T03:04:06Z","edited_at":"2026-01-02T03:04:07Z","deleted_at":null,"change_id":9}"#,
        );
        let threaded = Message {
            thread_root: Some(MessageId(id(5))),
            thread: Some(ThreadSummary {
                reply_count: 2,
                last_reply_seq: 8,
                last_reply_at: at(8),
                participants: vec![UserId(id(1))],
            }),
            mentions: vec![UserId(id(6))],
            mentions_room: true,
            ..message
        };
        pinned(
            threaded,
            r#"{"id":"00000000-0000-0000-0000-000000000003","room_id":"00000000-0000-0000-0000-000000000002","seq":7,"sender":"00000000-0000-0000-0000-000000000001","body":"héllo","reply_to":"00000000-0000-0000-0000-000000000004","txn_id":"t1","metadata":{"k":[1,2]},"created_at":"2026-01-02T03:04:06Z","edited_at":"2026-01-02T03:04:07Z","deleted_at":null,"change_id":9,"thread_root":"00000000-0000-0000-0000-000000000005","thread":{"reply_count":2,"last_reply_seq":8,"last_reply_at":"2026-01-02T03:04:08Z","participants":["00000000-0000-0000-0000-000000000001"]},"mentions":["00000000-0000-0000-0000-000000000006"],"mentions_room":true}"#,
        );
    }

    #[test]
    fn unknown_enum_names_are_errors() {
        let bytes = br#"{"room_id":"00000000-0000-0000-0000-000000000002","user_id":"00000000-0000-0000-0000-000000000001","role":"emperor","joined_at":"2026-01-02T03:04:05Z","last_read_seq":0}"#;
        assert!(decode::<Member>(bytes).is_err());
    }
}
