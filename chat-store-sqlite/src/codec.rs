//! Conversions between rows and chat-core types, and from sqlx errors to store errors.

use chat_core::auth::TokenHash;
use chat_core::store::{TokenKind, TokenRecord};
use chat_core::{
    Conflict, Member, Message, MessageId, Role, Room, RoomId, RoomKind, SessionId, Status,
    StoreError, ThreadSummary, User, UserId, Visibility,
};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use uuid::Uuid;

pub(crate) type StoreResult<T> = Result<T, StoreError>;

/// Stored data this code cannot read: a damaged or foreign file.
fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::backend(format!("unreadable stored value: {what}"))
}

/// Maps a sqlx error: unique violations to the conflict they mean, the rest kept as source.
pub(crate) fn map_err(error: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &error
        && db.is_unique_violation()
    {
        let message = db.message();
        let conflict = if message.contains("users.username") {
            Some(Conflict::UsernameTaken)
        } else if message.contains("users.email") {
            Some(Conflict::EmailTaken)
        } else if message.contains("rooms.alias") {
            Some(Conflict::AliasTaken)
        } else {
            None
        };
        if let Some(conflict) = conflict {
            return StoreError::Conflict(conflict);
        }
    }
    StoreError::backend(error)
}

pub(crate) fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

pub(crate) fn time(micros: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt(format!("time {micros}")))
}

fn opt_time(micros: Option<i64>) -> StoreResult<Option<DateTime<Utc>>> {
    micros.map(time).transpose()
}

/// Sequence numbers and cursors as SQLite integers; values beyond `i64::MAX` (only ever asked
/// for as bounds) saturate.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn uint(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| corrupt(format!("negative counter {n}")))
}

pub(crate) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    row.try_get(column).map_err(StoreError::backend)
}

fn uuid(row: &SqliteRow, column: &str) -> StoreResult<Uuid> {
    get(row, column)
}

fn opt_uuid(row: &SqliteRow, column: &str) -> StoreResult<Option<Uuid>> {
    get(row, column)
}

pub(crate) fn user(row: &SqliteRow) -> StoreResult<User> {
    let profile: String = get(row, "profile")?;
    let presence: String = get(row, "presence")?;
    Ok(User {
        id: UserId(uuid(row, "id")?),
        username: get(row, "username")?,
        email: get(row, "email")?,
        display_name: get(row, "display_name")?,
        profile: serde_json::from_str(&profile).map_err(corrupt)?,
        status: Status::parse(&presence).ok_or_else(|| corrupt(presence))?,
        status_message: get(row, "status_message")?,
        is_admin: get(row, "is_admin")?,
        created_at: time(get(row, "created_at")?)?,
        updated_at: time(get(row, "updated_at")?)?,
    })
}

macro_rules! user_columns {
    () => {
        "id, username, email, display_name, profile, presence, \
     status_message, is_admin, created_at, updated_at"
    };
}
pub(crate) use user_columns;

pub(crate) fn profile_json(user: &User) -> StoreResult<String> {
    serde_json::to_string(&user.profile).map_err(StoreError::backend)
}

pub(crate) fn token(row: &SqliteRow) -> StoreResult<TokenRecord> {
    let hash: Vec<u8> = get(row, "hash")?;
    let hash: [u8; 32] = hash.try_into().map_err(|_| corrupt("token hash length"))?;
    let kind: i64 = get(row, "kind")?;
    Ok(TokenRecord {
        hash: TokenHash::from_bytes(hash),
        kind: match kind {
            0 => TokenKind::Access,
            1 => TokenKind::Refresh,
            2 => TokenKind::Ticket,
            other => return Err(corrupt(format!("token kind {other}"))),
        },
        session_id: SessionId(uuid(row, "session_id")?),
        user_id: UserId(uuid(row, "user_id")?),
        expires_at: time(get(row, "expires_at")?)?,
        rotated: get(row, "rotated")?,
    })
}

pub(crate) fn token_kind(kind: TokenKind) -> i64 {
    match kind {
        TokenKind::Access => 0,
        TokenKind::Refresh => 1,
        TokenKind::Ticket => 2,
    }
}

macro_rules! room_columns {
    () => {
        "r.id, r.kind, r.name, r.topic, r.alias, r.visibility, \
     r.capacity, r.password_hash, r.owner, r.member_count, r.last_seq, r.last_change, \
     r.created_at, r.updated_at"
    };
}
pub(crate) use room_columns;

pub(crate) fn room(row: &SqliteRow) -> StoreResult<Room> {
    let kind: String = get(row, "kind")?;
    let visibility: String = get(row, "visibility")?;
    let capacity: Option<i64> = get(row, "capacity")?;
    let member_count: i64 = get(row, "member_count")?;
    Ok(Room {
        id: RoomId(uuid(row, "id")?),
        kind: RoomKind::parse(&kind).ok_or_else(|| corrupt(kind))?,
        name: get(row, "name")?,
        topic: get(row, "topic")?,
        alias: get(row, "alias")?,
        visibility: Visibility::parse(&visibility).ok_or_else(|| corrupt(visibility))?,
        capacity: capacity
            .map(|c| u32::try_from(c).map_err(corrupt))
            .transpose()?,
        password_hash: get(row, "password_hash")?,
        owner: opt_uuid(row, "owner")?.map(UserId),
        member_count: u32::try_from(member_count).map_err(corrupt)?,
        last_seq: uint(get(row, "last_seq")?)?,
        last_change: uint(get(row, "last_change")?)?,
        created_at: time(get(row, "created_at")?)?,
        updated_at: time(get(row, "updated_at")?)?,
    })
}

macro_rules! member_columns {
    () => {
        "room_id, user_id, role, joined_at, last_read_seq"
    };
}
pub(crate) use member_columns;

pub(crate) fn member(row: &SqliteRow) -> StoreResult<Member> {
    let role: String = get(row, "role")?;
    Ok(Member {
        room_id: RoomId(uuid(row, "room_id")?),
        user_id: UserId(uuid(row, "user_id")?),
        role: Role::parse(&role).ok_or_else(|| corrupt(role))?,
        joined_at: time(get(row, "joined_at")?)?,
        last_read_seq: uint(get(row, "last_read_seq")?)?,
    })
}

macro_rules! message_columns {
    () => {
        "room_id, seq, id, sender, body, reply_to, txn_id, \
     metadata, created_at, edited_at, deleted_at, change_id, thread_root, mentions, \
     mentions_room, thread_count, thread_last_seq, thread_last_at, thread_participants"
    };
}
pub(crate) use message_columns;

pub(crate) fn message(row: &SqliteRow) -> StoreResult<Message> {
    let metadata: Option<String> = get(row, "metadata")?;
    Ok(Message {
        id: MessageId(uuid(row, "id")?),
        room_id: RoomId(uuid(row, "room_id")?),
        seq: uint(get(row, "seq")?)?,
        sender: UserId(uuid(row, "sender")?),
        body: get(row, "body")?,
        reply_to: opt_uuid(row, "reply_to")?.map(MessageId),
        thread_root: opt_uuid(row, "thread_root")?.map(MessageId),
        thread: thread(row)?,
        mentions: user_ids(get(row, "mentions")?)?,
        mentions_room: get(row, "mentions_room")?,
        txn_id: get(row, "txn_id")?,
        metadata: metadata
            .map(|json| serde_json::from_str(&json).map_err(corrupt))
            .transpose()?,
        created_at: time(get(row, "created_at")?)?,
        edited_at: opt_time(get(row, "edited_at")?)?,
        deleted_at: opt_time(get(row, "deleted_at")?)?,
        change_id: uint(get(row, "change_id")?)?,
        reactions: Vec::new(),
    })
}

/// A root's thread summary, once it has replies.
fn thread(row: &SqliteRow) -> StoreResult<Option<ThreadSummary>> {
    let Some(last_reply_seq) = get::<Option<i64>>(row, "thread_last_seq")? else {
        return Ok(None);
    };
    Ok(Some(ThreadSummary {
        reply_count: uint(get(row, "thread_count")?)?,
        last_reply_seq: uint(last_reply_seq)?,
        last_reply_at: time(get(row, "thread_last_at")?)?,
        participants: user_ids(get(row, "thread_participants")?)?,
    }))
}

/// User ids from a JSON array of hex strings (any case), as the schema keeps lists of users.
pub(crate) fn user_ids(json: Option<String>) -> StoreResult<Vec<UserId>> {
    let Some(json) = json else {
        return Ok(Vec::new());
    };
    let hex: Vec<String> = serde_json::from_str(&json).map_err(corrupt)?;
    hex.iter()
        .map(|hex| Uuid::parse_str(hex).map(UserId).map_err(corrupt))
        .collect()
}

/// User ids as a JSON array of hex strings; `None` for none.
pub(crate) fn user_ids_json(users: &[UserId]) -> Option<String> {
    (!users.is_empty()).then(|| {
        let hex: Vec<String> = users.iter().map(|u| u.0.simple().to_string()).collect();
        serde_json::Value::from(hex).to_string()
    })
}

pub(crate) fn metadata_json(value: &Option<serde_json::Value>) -> StoreResult<Option<String>> {
    value
        .as_ref()
        .map(|v| serde_json::to_string(v).map_err(StoreError::backend))
        .transpose()
}
