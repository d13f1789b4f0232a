//! Conversions between rows and chat-core types, and from sqlx errors to store errors.

use chat_core::auth::TokenHash;
use chat_core::store::{TokenKind, TokenRecord};
use chat_core::{
    Conflict, Member, Message, MessageId, Role, Room, RoomId, RoomKind, SessionId, Status,
    StoreError, ThreadSummary, User, UserId, Visibility,
};
use sqlx::Row;
use sqlx::postgres::PgRow;

pub(crate) type StoreResult<T> = Result<T, StoreError>;

/// Stored data this code cannot read.
fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::backend(format!("unreadable stored value: {what}"))
}

/// Maps a sqlx error: unique violations to the conflict they mean (by constraint name), the
/// rest kept as source.
pub(crate) fn map_err(error: sqlx::Error) -> StoreError {
    if is_unavailable(&error) {
        return StoreError::Unavailable(error.into());
    }
    if let sqlx::Error::Database(db) = &error
        && db.is_unique_violation()
    {
        let conflict = match db.constraint() {
            Some("users_username_key") => Some(Conflict::UsernameTaken),
            Some("users_email_key") => Some(Conflict::EmailTaken),
            Some("rooms_alias_key") => Some(Conflict::AliasTaken),
            _ => None,
        };
        if let Some(conflict) = conflict {
            return StoreError::Conflict(conflict);
        }
    }
    StoreError::backend(error)
}

/// Whether an error says the database cannot be reached now rather than that the request was
/// wrong: lost or refused connections, no pooled connection in time, the server shutting down
/// or starting (SQLSTATE classes 08 and 57P).
pub(crate) fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// Whether an error is a unique violation of the named constraint or index.
pub(crate) fn violates(error: &sqlx::Error, constraint: &str) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.is_unique_violation() && db.constraint() == Some(constraint))
}

/// Sequence numbers and cursors as PostgreSQL `BIGINT`s; values beyond `i64::MAX` (only ever
/// asked for as bounds) saturate.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn uint(n: i64) -> StoreResult<u64> {
    u64::try_from(n).map_err(|_| corrupt(format!("negative counter {n}")))
}

pub(crate) fn get<'r, T>(row: &'r PgRow, column: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(column).map_err(StoreError::backend)
}

macro_rules! user_columns {
    () => {
        "id, username, email, display_name, profile, presence, \
         status_message, is_admin, created_at, updated_at"
    };
}
pub(crate) use user_columns;

pub(crate) fn user(row: &PgRow) -> StoreResult<User> {
    let profile: String = get(row, "profile")?;
    let status: String = get(row, "presence")?;
    Ok(User {
        id: UserId(get(row, "id")?),
        username: get(row, "username")?,
        email: get(row, "email")?,
        display_name: get(row, "display_name")?,
        profile: serde_json::from_str(&profile).map_err(corrupt)?,
        status: Status::parse(&status).ok_or_else(|| corrupt(status))?,
        status_message: get(row, "status_message")?,
        is_admin: get(row, "is_admin")?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn profile_json(user: &User) -> StoreResult<String> {
    serde_json::to_string(&user.profile).map_err(StoreError::backend)
}

macro_rules! token_columns {
    () => {
        "hash, kind, session_id, user_id, expires_at, rotated"
    };
}
pub(crate) use token_columns;

pub(crate) fn token(row: &PgRow) -> StoreResult<TokenRecord> {
    let hash: Vec<u8> = get(row, "hash")?;
    let hash: [u8; 32] = hash.try_into().map_err(|_| corrupt("token hash length"))?;
    let kind: i16 = get(row, "kind")?;
    Ok(TokenRecord {
        hash: TokenHash::from_bytes(hash),
        kind: match kind {
            0 => TokenKind::Access,
            1 => TokenKind::Refresh,
            2 => TokenKind::Ticket,
            other => return Err(corrupt(format!("token kind {other}"))),
        },
        session_id: SessionId(get(row, "session_id")?),
        user_id: UserId(get(row, "user_id")?),
        expires_at: get(row, "expires_at")?,
        rotated: get(row, "rotated")?,
    })
}

pub(crate) fn token_kind(kind: TokenKind) -> i16 {
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

pub(crate) fn room(row: &PgRow) -> StoreResult<Room> {
    let kind: String = get(row, "kind")?;
    let visibility: String = get(row, "visibility")?;
    let capacity: Option<i64> = get(row, "capacity")?;
    let member_count: i64 = get(row, "member_count")?;
    Ok(Room {
        id: RoomId(get(row, "id")?),
        kind: RoomKind::parse(&kind).ok_or_else(|| corrupt(kind))?,
        name: get(row, "name")?,
        topic: get(row, "topic")?,
        alias: get(row, "alias")?,
        visibility: Visibility::parse(&visibility).ok_or_else(|| corrupt(visibility))?,
        capacity: capacity
            .map(|c| u32::try_from(c).map_err(corrupt))
            .transpose()?,
        password_hash: get(row, "password_hash")?,
        owner: get::<Option<uuid::Uuid>>(row, "owner")?.map(UserId),
        member_count: u32::try_from(member_count).map_err(corrupt)?,
        last_seq: uint(get(row, "last_seq")?)?,
        last_change: uint(get(row, "last_change")?)?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

macro_rules! member_columns {
    () => {
        "m.room_id, m.user_id, m.role, m.joined_at, m.last_read_seq"
    };
}
pub(crate) use member_columns;

pub(crate) fn member(row: &PgRow) -> StoreResult<Member> {
    let role: String = get(row, "role")?;
    Ok(Member {
        room_id: RoomId(get(row, "room_id")?),
        user_id: UserId(get(row, "user_id")?),
        role: Role::parse(&role).ok_or_else(|| corrupt(role))?,
        joined_at: get(row, "joined_at")?,
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

pub(crate) fn message(row: &PgRow) -> StoreResult<Message> {
    let metadata: Option<String> = get(row, "metadata")?;
    Ok(Message {
        id: MessageId(get(row, "id")?),
        room_id: RoomId(get(row, "room_id")?),
        seq: uint(get(row, "seq")?)?,
        sender: UserId(get(row, "sender")?),
        body: get(row, "body")?,
        reply_to: get::<Option<uuid::Uuid>>(row, "reply_to")?.map(MessageId),
        thread_root: get::<Option<uuid::Uuid>>(row, "thread_root")?.map(MessageId),
        thread: thread(row)?,
        mentions: user_ids(get(row, "mentions")?),
        mentions_room: get(row, "mentions_room")?,
        txn_id: get(row, "txn_id")?,
        metadata: metadata
            .map(|json| serde_json::from_str(&json).map_err(corrupt))
            .transpose()?,
        created_at: get(row, "created_at")?,
        edited_at: get(row, "edited_at")?,
        deleted_at: get(row, "deleted_at")?,
        change_id: uint(get(row, "change_id")?)?,
        reactions: Vec::new(),
    })
}

/// A root's thread summary, once it has replies.
fn thread(row: &PgRow) -> StoreResult<Option<ThreadSummary>> {
    let Some(last_reply_seq) = get::<Option<i64>>(row, "thread_last_seq")? else {
        return Ok(None);
    };
    Ok(Some(ThreadSummary {
        reply_count: uint(get(row, "thread_count")?)?,
        last_reply_seq: uint(last_reply_seq)?,
        last_reply_at: get(row, "thread_last_at")?,
        participants: user_ids(get(row, "thread_participants")?),
    }))
}

pub(crate) fn user_ids(ids: Option<Vec<uuid::Uuid>>) -> Vec<UserId> {
    ids.unwrap_or_default().into_iter().map(UserId).collect()
}

pub(crate) fn metadata_json(value: &Option<serde_json::Value>) -> StoreResult<Option<String>> {
    value
        .as_ref()
        .map(|v| serde_json::to_string(v).map_err(StoreError::backend))
        .transpose()
}
