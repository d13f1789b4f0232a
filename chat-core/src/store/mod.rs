//! The storage traits: what a backend must provide, and what it must guarantee.
//!
//! Storage is split by concern into [`UserStore`], [`SessionStore`], [`RoomStore`],
//! [`MemberStore`], [`MessageStore`], [`ReactionStore`], [`ThreadStore`], [`ReadMarkerStore`],
//! [`AttemptStore`], [`ConnectionStore`] and [`ImportStore`]; a backend implements all eleven
//! and gets [`Store`] for free. Stores hold
//! data and make the listed operations atomic; they never decide permissions —
//! [`Chat`](crate::Chat) does.
//!
//! The store is also what several engines (several processes) on one database share: every
//! fact a user can observe — messages and their order, logins and whether they ended, tickets,
//! failed-login counts, who is connected — lives here, never in one engine's memory.
//!
//! # Contract
//!
//! Every implementation must guarantee, for every method:
//! - the errors named in its docs, as the [`StoreError`] variants named there (the conformance
//!   suite in the `testing` module, feature `testing`, checks them); any other failure is
//!   [`StoreError::Backend`];
//! - that a method documented as atomic is atomic against every other method, from any number of
//!   concurrent callers;
//! - that a value written is read back equal (times are whole microseconds);
//! - that an acknowledged write survives what the backend promises to survive.
//!
//! # Implementing your own store
//!
//! The simplest correct store wraps another one; a real one maps each method onto its database.
//! Run the conformance suite on it with the `store_conformance_tests!` macro (feature `testing`).
//!
//! ```
//! use std::sync::Arc;
//! use chat_core::store::{MemoryStore, Store};
//!
//! let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
//! # let _ = store;
//! ```

mod location;
mod memory;

use std::ops::RangeInclusive;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use self::location::{BadLocation, Location};
pub use self::memory::MemoryStore;
use crate::auth::TokenHash;
use crate::error::StoreError;
use crate::ids::{ConnectionId, MessageId, NodeId, RoomId, SessionId, UserId};
use crate::message::{Message, Reaction, Sent, Thread, ThreadSummary, UnreadCounts};
use crate::room::{Member, MemberCursor, Role, Room};
use crate::user::User;

/// The result of every storage method.
pub type StoreResult<T> = Result<T, StoreError>;

/// Every storage trait at once: what [`Chat`](crate::Chat) is built on, as `Arc<dyn Store>`.
pub trait Store:
    UserStore
    + SessionStore
    + RoomStore
    + MemberStore
    + MessageStore
    + ReactionStore
    + ThreadStore
    + ReadMarkerStore
    + AttemptStore
    + ConnectionStore
    + ImportStore
    + 'static
{
}

impl<T> Store for T where
    T: UserStore
        + SessionStore
        + RoomStore
        + MemberStore
        + MessageStore
        + ReactionStore
        + ThreadStore
        + ReadMarkerStore
        + AttemptStore
        + ConnectionStore
        + ImportStore
        + 'static
{
}

/// A page of the user directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    /// Only users whose username or display name contains this text (case-insensitive).
    pub search: Option<String>,
    /// Only users whose username sorts after this one (the page cursor).
    pub after_username: Option<String>,
    /// At most this many.
    pub limit: u32,
}

/// Users and their password hashes.
///
/// # Contract
///
/// - Usernames and emails arrive lowercased (ASCII for usernames; emails by
///   [`str::to_lowercase`]); uniqueness and lookups compare them byte for byte, so the store
///   needs no collation of its own.
/// - The directory (`list_users`) orders by username bytes and searches by [`fold`]: the search
///   text, folded, occurring in the folded username or display name.
/// - Deleting a user takes its tokens with it; memberships and messages are the engine's to
///   handle (it leaves rooms first), so the store must not cascade them.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a new user, with a password hash or none (host-authenticated users).
    ///
    /// Errors: [`Conflict::UsernameTaken`](crate::Conflict::UsernameTaken) when the username is
    /// in use, [`Conflict::EmailTaken`](crate::Conflict::EmailTaken) when the email is. Usernames
    /// and emails arrive lowercased.
    async fn insert_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()>;

    /// The user with this id.
    async fn user(&self, id: UserId) -> StoreResult<Option<User>>;

    /// The user with this (lowercase) username.
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>>;

    /// The user with this (lowercase) email.
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>>;

    /// The user's password hash; `None` for a user without a password or no such user.
    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>>;

    /// Replaces the user's password hash.
    ///
    /// Errors: [`StoreError::NotFound`] (`User`).
    async fn set_password_hash(&self, id: UserId, hash: Option<&str>) -> StoreResult<()>;

    /// Writes every field of `user` over the stored user with the same id.
    ///
    /// Errors: [`StoreError::NotFound`] (`User`); `Conflict(UsernameTaken | EmailTaken)`.
    async fn update_user(&self, user: &User) -> StoreResult<()>;

    /// Deletes the user, its password hash and all its tokens, atomically. Memberships and
    /// messages are left to the caller.
    ///
    /// Errors: [`StoreError::NotFound`] (`User`).
    async fn delete_user(&self, id: UserId) -> StoreResult<()>;

    /// Users ordered by username, after the cursor, filtered by the search text.
    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>>;
}

/// A newly issued token, as stored: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The SHA-256 of the token.
    pub hash: TokenHash,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// A refresh token presented for a new pair ([`SessionStore::rotate_refresh_token`]): the
/// new access and refresh tokens named, as they are easily swapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExchange {
    /// The hash of the refresh token presented.
    pub presented: TokenHash,
    /// The new access token.
    pub access: IssuedToken,
    /// The new refresh token.
    pub refresh: IssuedToken,
    /// When it is presented.
    pub at: DateTime<Utc>,
}

/// A new login: its id, its user and its first pair of tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The login's id, shared by every token that refreshing it produces.
    pub session_id: SessionId,
    /// Who logged in.
    pub user_id: UserId,
    /// The access token.
    pub access: IssuedToken,
    /// The refresh token.
    pub refresh: IssuedToken,
}

/// Access, refresh or ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Authenticates requests.
    Access,
    /// Obtains a new token pair, once.
    Refresh,
    /// Opens one live feed, once, shortly after it was issued (for browsers' WebSockets, which
    /// cannot send headers).
    Ticket,
}

/// A stored token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The token's hash.
    pub hash: TokenHash,
    /// Access or refresh.
    pub kind: TokenKind,
    /// The login it belongs to.
    pub session_id: SessionId,
    /// The user it authenticates.
    pub user_id: UserId,
    /// When it stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// For a refresh token: it was already exchanged for a new pair.
    pub rotated: bool,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotation {
    /// The token was valid: it is now rotated, the login's old access tokens are gone and the
    /// new pair is stored.
    Rotated {
        /// The login.
        session_id: SessionId,
        /// Its user.
        user_id: UserId,
    },
    /// The token had already been rotated: someone replayed it, so the whole login is revoked.
    Reused {
        /// The revoked login.
        session_id: SessionId,
        /// Its user.
        user_id: UserId,
    },
    /// Unknown, expired, or not a refresh token; nothing changed.
    Invalid,
}

/// Login sessions and their tokens, kept only as hashes.
///
/// # Contract
///
/// - A token is found only by its hash and only while unexpired and unrevoked at the `now`
///   passed in: the store never reads a clock of its own.
/// - Rotation is atomic: of concurrent rotations of one refresh token exactly one succeeds; a
///   rotated token presented again revokes the whole session ([`Rotation::Reused`]).
/// - Tickets are single use across every process (`take_ticket`) and are issued only for a
///   session that stands, in the same step as the check.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new login with its first token pair.
    async fn insert_session(&self, session: &NewSession) -> StoreResult<()>;

    /// The token with this hash, whatever its state (expiry is the caller's to check).
    async fn token(&self, hash: &TokenHash) -> StoreResult<Option<TokenRecord>>;

    /// Exchanges a refresh token for a new pair, atomically.
    ///
    /// To ensure correctness: when `presented` is an unexpired (at `at`), unrotated refresh
    /// token, mark it rotated, delete its login's access tokens, store `access` and `refresh` in
    /// the same login and return [`Rotation::Rotated`]. When it is a rotated refresh token,
    /// delete every token of its login and return [`Rotation::Reused`]. Otherwise change
    /// nothing and return [`Rotation::Invalid`]. Two concurrent calls with the same token: at
    /// most one gets `Rotated`.
    async fn rotate_refresh_token(&self, exchange: &TokenExchange) -> StoreResult<Rotation>;

    /// Stores a ticket (a [`TokenKind::Ticket`] token) of a login, atomically with the check
    /// that the login has not ended: it is stored only while the login has an access or refresh
    /// token that is neither rotated nor expired at `now`. Returns whether it was stored.
    ///
    /// To ensure correctness: a ticket must never outlive its login. Since ending a login deletes
    /// its tokens, tickets included, a ticket stored after that would open a feed for an ended
    /// login; checking and inserting in one step rules that out.
    async fn insert_ticket(
        &self,
        ticket: &IssuedToken,
        session: SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Redeems a ticket, atomically: deletes the [`TokenKind::Ticket`] token with this hash and
    /// returns it if it had not expired at `now`. Of concurrent calls (from any process) at most
    /// one gets it. Any other token, or none, gives `None` and changes nothing.
    async fn take_ticket(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TokenRecord>>;

    /// Whether the login has not ended: it has an access or refresh token that is neither
    /// rotated nor expired at `now`.
    async fn session_active(&self, session: SessionId, now: DateTime<Utc>) -> StoreResult<bool>;

    /// Deletes every token of the login. Revoking an unknown login is not an error.
    async fn revoke_session(&self, session: SessionId) -> StoreResult<()>;

    /// Deletes every token of every login of the user.
    async fn revoke_user_sessions(&self, user: UserId) -> StoreResult<()>;

    /// Deletes tokens that expired before `now`; returns how many.
    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// A page of a room list (the public rooms, or a user's), ordered by room id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomQuery {
    /// Only rooms whose name, topic or alias contains this text ([`fold`]ed).
    pub search: Option<String>,
    /// Only rooms with a larger id (the page cursor).
    pub after: Option<RoomId>,
    /// At most this many.
    pub limit: u32,
}

impl RoomQuery {
    /// Every room, for the engine's own walks over a user's rooms (unread totals, resyncs,
    /// account deletion); what callers list is paged.
    pub const ALL: Self = Self {
        search: None,
        after: None,
        limit: u32::MAX,
    };

    /// Whether `room` passes the search text, by [`fold`]: for stores that filter in Rust.
    pub fn matches(&self, room: &Room) -> bool {
        let Some(search) = &self.search else {
            return true;
        };
        let needle = fold(search);
        [
            Some(room.name.as_str()),
            room.topic.as_deref(),
            room.alias.as_deref(),
        ]
        .into_iter()
        .flatten()
        .any(|field| fold(field).contains(&needle))
    }
}

/// A page of a room's members, ordered by `joined_at`, then user id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberQuery {
    /// Only members after this one in that order (the page cursor).
    pub after: Option<MemberCursor>,
    /// At most this many.
    pub limit: u32,
}

impl MemberQuery {
    /// Every member, for the engine's own use (the other side of a direct conversation).
    pub const ALL: Self = Self {
        after: None,
        limit: u32::MAX,
    };

    /// This page of `members` (in any order): for stores that page in Rust.
    pub fn page(&self, mut members: Vec<Member>) -> Vec<Member> {
        members.sort_by_key(MemberCursor::of);
        if let Some(after) = &self.after {
            members.retain(|member| after.precedes(member));
        }
        members.truncate(self.limit as usize);
        members
    }
}

/// Rooms and direct conversations.
///
/// # Contract
///
/// - The store owns the counters: `member_count`, `last_seq`, `last_change` (and the owner, set
///   only by membership operations) are never taken from a `Room` passed in.
/// - Aliases arrive lowercased and are unique among group rooms.
/// - Deleting a room deletes its memberships and messages and frees its alias, its direct pair
///   and its messages' transaction ids, all at once.
/// - Room lists search by [`fold`] in name, topic and alias ([`RoomQuery::matches`]), ordered by
///   room id bytes.
#[async_trait]
pub trait RoomStore: Send + Sync {
    /// Creates a group room together with its owner's membership, atomically.
    ///
    /// The stored room has `member_count` 1 and counters 0 whatever `room` says.
    /// Errors: [`Conflict::AliasTaken`](crate::Conflict::AliasTaken).
    async fn create_room(&self, room: &Room, owner: &Member) -> StoreResult<()>;

    /// The room with this id.
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>>;

    /// The group room with this (lowercase) alias.
    async fn room_by_alias(&self, alias: &str) -> StoreResult<Option<Room>>;

    /// Writes the editable fields of `room` (name, topic, alias, visibility, capacity,
    /// password hash, `updated_at`); owner, member count and counters are left as stored.
    ///
    /// Errors: [`StoreError::NotFound`] (`Room`); `Conflict(AliasTaken)`.
    async fn update_room(&self, room: &Room) -> StoreResult<()>;

    /// Deletes the room with its memberships and messages, atomically.
    ///
    /// Errors: [`StoreError::NotFound`] (`Room`).
    async fn delete_room(&self, id: RoomId) -> StoreResult<()>;

    /// Public group rooms ordered by id, after the cursor, filtered by the search text.
    async fn list_public_rooms(&self, query: &RoomQuery) -> StoreResult<Vec<Room>>;

    /// Every room, group and direct, public or private, ordered by id: at most `limit` after
    /// `after`. For work on the whole store (the counter check), never shown to users.
    async fn list_rooms(&self, after: Option<RoomId>, limit: u32) -> StoreResult<Vec<Room>>;

    /// Sets the counters of `seen.room` to `fixed` and brings every read marker beyond
    /// `fixed.last_seq` back to it, atomically, if its counters are still `seen.counters`;
    /// returns whether it did (the counter check's repair: a room written meanwhile is left for
    /// the next run).
    ///
    /// Errors: [`StoreError::NotFound`] (`Room`).
    async fn repair_counters(&self, seen: SeenCounters, fixed: RoomCounters) -> StoreResult<bool>;

    /// The rooms the user is a member of, with the membership, ordered by room id: a page
    /// after the cursor, filtered by the search text, as for public rooms.
    async fn rooms_of_user(
        &self,
        user: UserId,
        query: &RoomQuery,
    ) -> StoreResult<Vec<(Room, Member)>>;

    /// The direct conversation between two users, creating it (as `room`, with `members`) if
    /// there is none, atomically: concurrent calls for the same unordered pair all return the
    /// same room. Returns the room and whether this call created it.
    async fn find_or_create_direct(
        &self,
        room: &Room,
        members: [&Member; 2],
    ) -> StoreResult<(Room, bool)>;

    /// The direct conversation between two users, in either order.
    async fn direct_room(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>>;
}

/// A room's counters as a check read them: a repair given these applies only while the room
/// still holds them, so a room written meanwhile is left for the next run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeenCounters {
    /// The room.
    pub room: RoomId,
    /// Its counters when read.
    pub counters: RoomCounters,
}

impl SeenCounters {
    /// `room`'s counters as it holds them.
    pub fn of(room: &Room) -> Self {
        Self {
            room: room.id,
            counters: RoomCounters::of(room),
        }
    }
}

/// The counters a store keeps on a room ([`RoomStore::repair_counters`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomCounters {
    /// The newest message's sequence number.
    pub last_seq: u64,
    /// The newest change cursor.
    pub last_change: u64,
    /// How many members.
    pub member_count: u32,
}

impl RoomCounters {
    /// The counters as `room` holds them.
    pub fn of(room: &Room) -> Self {
        Self {
            last_seq: room.last_seq,
            last_change: room.last_change,
            member_count: room.member_count,
        }
    }
}

/// Membership of users in rooms.
///
/// # Contract
///
/// - Adding checks capacity and duplicates in the same step; removing hands ownership on by
///   [`successor`] and deletes an emptied room in the same step ([`Departure`]).
/// - A room's owner is always one of its members, with the owner role, and the only one.
/// - Reads of an unknown room are empty, not errors.
#[async_trait]
pub trait MemberStore: RoomStore {
    /// Adds a member, atomically checking capacity in the same step.
    ///
    /// The stored member's `last_read_seq` is the room's `last_seq` at that moment (a newcomer
    /// has read nothing old as unread); the room's `member_count` grows by one. Returns the
    /// stored member.
    /// Errors: [`StoreError::NotFound`] (`Room`); [`Conflict::AlreadyMember`](crate::Conflict);
    /// [`Conflict::RoomFull`](crate::Conflict) when `member_count` has reached `capacity`.
    async fn add_member(&self, member: &Member) -> StoreResult<Member>;

    /// Removes a membership (and with it the read marker), atomically with what follows from
    /// it: `member_count` shrinks by one; when the owner goes, the [`successor`] becomes owner;
    /// when no member is left, the room is deleted as by [`RoomStore::delete_room`]. Two
    /// members leaving at once can therefore never leave a room without an owner among its
    /// members, or an empty room behind.
    ///
    /// Errors: [`StoreError::NotFound`] (`Member`).
    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<Departure>;

    /// The membership of `user` in `room`.
    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>>;

    /// The room and `user`'s membership in it (if any): the check in front of nearly every
    /// operation. `None` when the room does not exist.
    ///
    /// Provided as two reads ([`RoomStore::room`], then [`MemberStore::member`]); a backend that
    /// can read both at once (a join, one lock) overrides it for speed.
    async fn room_with_member(
        &self,
        room: RoomId,
        user: UserId,
    ) -> StoreResult<Option<(Room, Option<Member>)>> {
        let Some(found) = self.room(room).await? else {
            return Ok(None);
        };
        Ok(Some((found, self.member(room, user).await?)))
    }

    /// The room's members, ordered by `joined_at`, then user id: a page after the cursor. An
    /// unknown room has none (no error).
    async fn members(&self, room: RoomId, query: &MemberQuery) -> StoreResult<Vec<Member>>;

    /// Changes a member's role.
    ///
    /// Errors: [`StoreError::NotFound`] (`Member`).
    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> StoreResult<Member>;

    /// Makes `to` the owner, atomically: the room's owner becomes `to`, `to`'s role becomes
    /// owner and the previous owner's role admin.
    ///
    /// Errors: [`StoreError::NotFound`] (`Room` or `Member` when `to` is not a member).
    async fn transfer_ownership(&self, room: RoomId, to: UserId) -> StoreResult<()>;
}

/// The case folding every store searches names by (Unicode lowercase mapping, not only ASCII):
/// a search text matches a field when `fold(text)` occurs in `fold(field)`. A store whose query
/// language cannot fold so keeps folded copies of the fields it searches.
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// A room's searched fields (name, topic, alias) [`fold`]ed into one text, one per line: what
/// a SQL store keeps beside the room and looks for a folded search text in. A search text is a
/// single line, so it never matches across two fields.
pub fn room_search_text(room: &Room) -> String {
    let fields = [
        Some(room.name.as_str()),
        room.topic.as_deref(),
        room.alias.as_deref(),
    ];
    let fields: Vec<&str> = fields.into_iter().flatten().collect();
    fold(&fields.join("\n"))
}

/// A user's searched fields (username, display name), folded the same way.
pub fn user_search_text(username: &str, display_name: &str) -> String {
    fold(&format!("{username}\n{display_name}"))
}

/// What [`MemberStore::remove_member`] did to the room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Departure {
    /// The member is gone; when it was the owner, `new_owner` (as stored now) took over.
    Left {
        /// The member who became owner.
        new_owner: Option<Member>,
    },
    /// It was the last member: the room is deleted with its messages.
    RoomDeleted,
}

/// Who owns a room after its owner `leaving` goes: the remaining member with the highest role
/// (an admin before a member), then the longest-standing, then the lowest user id. Every store
/// hands ownership on by this rule.
pub fn successor(members: &[Member], leaving: UserId) -> Option<&Member> {
    members
        .iter()
        .filter(|m| m.user_id != leaving)
        .max_by_key(|m| (m.role, std::cmp::Reverse((m.joined_at, m.user_id))))
}

/// A message as handed to [`MessageStore::append_message`]; the store assigns the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStoredMessage {
    /// Chosen by the engine (a UUIDv7, so ids grow with time): the store keeps it as given.
    pub id: MessageId,
    /// Checked by the store in the append's own step, as the sender's membership is.
    pub room_id: RoomId,
    /// A member of the room, as the store finds it when it appends (a member removed while
    /// sending does not post).
    pub sender: UserId,
    /// Validated by the engine: non-empty, within the configured length.
    pub body: String,
    /// A message of the same room, checked by the store.
    pub reply_to: Option<MessageId>,
    /// A live root of the same room, checked by the store, which counts the reply in its
    /// summary.
    pub thread_root: Option<MessageId>,
    /// Users to mention: no repeats, not the sender; the store keeps those who are members.
    pub mentions: Vec<UserId>,
    /// Mention every member of the room (the engine allows it to owners and admins).
    pub mentions_room: bool,
    /// The sender's transaction id: a repeat returns the original message (see the contract).
    pub txn_id: Option<String>,
    /// Application data, kept as given.
    pub metadata: Option<serde_json::Value>,
    /// When the engine took it in; the store does not check the clock.
    pub created_at: DateTime<Utc>,
}

impl NewStoredMessage {
    /// Plain text: no reply, thread, mentions, transaction id or metadata.
    pub fn text(
        id: MessageId,
        room_id: RoomId,
        sender: UserId,
        body: impl Into<String>,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            room_id,
            sender,
            body: body.into(),
            reply_to: None,
            thread_root: None,
            mentions: Vec::new(),
            mentions_room: false,
            txn_id: None,
            metadata: None,
            created_at,
        }
    }

    /// The stored message: this one at sequence number `seq` and change cursor `change_id`,
    /// never edited or deleted, mentioning all of `mentions` (a store that kept fewer says so).
    pub fn stored_at(&self, seq: u64, change_id: u64) -> Message {
        Message {
            id: self.id,
            room_id: self.room_id,
            seq,
            sender: self.sender,
            body: self.body.clone(),
            reply_to: self.reply_to,
            thread_root: self.thread_root,
            thread: None,
            mentions: self.mentions.clone(),
            mentions_room: self.mentions_room,
            txn_id: self.txn_id.clone(),
            metadata: self.metadata.clone(),
            created_at: self.created_at,
            edited_at: None,
            deleted_at: None,
            change_id,
            reactions: Vec::new(),
        }
    }
}

/// Sequence range of a history read, already validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqRange {
    /// Only messages with a smaller sequence number.
    pub before: Option<u64>,
    /// Only messages with a larger sequence number.
    pub after: Option<u64>,
    /// At most this many (at least 1).
    pub limit: u32,
}

/// Messages.
///
/// # Contract
///
/// - Sequence numbers are per room, start at 1, and are gapless and strictly increasing in
///   commit order, whatever the number of concurrent writers or processes.
/// - Every create, edit or delete takes the room's next change cursor, in the same step.
/// - A transaction id belongs to its sender across all rooms until its message's room is
///   deleted; a repeat returns the original without writing anything.
/// - Tombstones keep their sequence number and are neither edited nor deleted again; deleting a
///   message takes back its mentions.
/// - A mention counts for a member (in [`ReadMarkerStore::unread_counts`], in
///   [`MessageStore::mentions`]) while the member stays in the room: leaving takes the member's
///   mentions and thread markers in the room with it.
/// - History and change reads cost the same however long the history is; an unknown room has
///   none.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Appends a message to its room, atomically, if its sender may.
    ///
    /// To ensure correctness, in one step: check, in this order, that the room exists
    /// (else [`StoreError::NotFound`]`(Room)`), that the sender is a user and a member of it
    /// (else `NotFound(Member)`: a deleted user stays a member of its direct conversations but
    /// posts in none), that `reply_to`, if any, is a message of the same room (else
    /// `NotFound(Message)`), and that `thread_root`, if any, is a live message of the same room
    /// that is not itself a reply in a thread (else `NotFound(Thread)`); a refused append
    /// changes nothing. Then, if the sender already has a message with this `txn_id` (in any
    /// room), return it with `created: false` and change nothing. Otherwise give the message the
    /// room's next sequence number (`last_seq + 1`: gapless, strictly increasing) and next
    /// change cursor (`last_change + 1`), store it, and move the sender's read marker to its
    /// sequence number.
    ///
    /// Of `mentions`, keep those who are members of the room, in the order given, and count
    /// the message as a mention of each; with `mentions_room`, of every member but the sender.
    /// A reply in a thread, in the same step: counts itself in the root's summary
    /// ([`ThreadSummary::counting`](crate::ThreadSummary::counting)); moves the sender's thread
    /// marker to itself; and makes the sender, the root's sender and the users kept as
    /// mentioned in the root or the reply follow the thread, those of them who are members.
    /// The root's change cursor stays: the reply in the change feed tells a client what
    /// changed.
    ///
    /// Checking membership in the same step as the append is what makes a send one store call,
    /// and what keeps a member removed while sending from posting after the removal.
    async fn append_message(&self, message: &NewStoredMessage) -> StoreResult<Sent>;

    /// The message with this id, tombstones included.
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;

    /// Replaces the body of a live message and sets `edited_at`, giving it the room's next
    /// change cursor, atomically.
    ///
    /// Errors: [`StoreError::NotFound`] (`Message`), also when it is a tombstone.
    async fn edit_message(
        &self,
        id: MessageId,
        body: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Message>;

    /// Turns a message into a tombstone: empty body, no metadata, `deleted_at` set, the room's
    /// next change cursor; it keeps its sequence number. Atomic.
    ///
    /// Errors: [`StoreError::NotFound`] (`Message`), also when it is already a tombstone.
    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> StoreResult<Message>;

    /// A page of the room's history, oldest first: with `after`, the oldest `limit` above it;
    /// otherwise the newest `limit` below `before` (or of all). Must cost the same however long
    /// the history is. An unknown room has none (no error).
    async fn messages(&self, room: RoomId, range: SeqRange) -> StoreResult<Vec<Message>>;

    /// The room's messages whose `change_id` is greater than `after`, ordered by `change_id`,
    /// at most `limit`. An unknown room has none (no error).
    async fn changes(&self, room: RoomId, after: u64, limit: u32) -> StoreResult<Vec<Message>>;

    /// The live messages of the rooms `query.user` is a member of (only `query.room`, when
    /// given) whose [`terms`](crate::search::terms) are matched by the query's
    /// ([`matches`](crate::search::matches)), newest first (by id), with an id below
    /// `query.before`, at most `query.limit`. A message is found by its current text (an edit
    /// replaces what it is found by; a tombstone is found by nothing), and only while the
    /// user is a member. A store keeps an index for this, updated in the same step as the
    /// message, or scans (the memory store).
    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<Message>>;

    /// The live messages that mention `user` (by name or the whole room) in rooms it is a
    /// member of, sent by others, newest first (by id), with an id below `before`, at most
    /// `limit`. Costs the same however many messages the rooms hold.
    async fn mentions(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;

    /// The mentions counted for the room's messages numbered in `seqs`, ordered by
    /// sequence number then user id: what an export writes. An unknown room has none.
    async fn mentions_between(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<Mention>>;

    /// Replaces the room's unread mentions (those after their member's read marker, and any of
    /// users who are not members) with `mentions`, atomically, if its counters are still `seen`
    /// (no message, change or member came or went since they were read); returns whether it
    /// did. Mentions already read stay as they are. The counter check's repair of unread
    /// mention counts.
    ///
    /// Errors: [`StoreError::NotFound`] (`Room`).
    async fn replace_unread_mentions(
        &self,
        seen: SeenCounters,
        mentions: &[Mention],
    ) -> StoreResult<bool>;
}

/// A member mentioned by a message of a room ([`MessageStore::replace_unread_mentions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mention {
    /// The member mentioned.
    pub user: UserId,
    /// The message's sequence number.
    pub seq: u64,
    /// The message.
    pub message: MessageId,
}

/// What [`MessageStore::search`] looks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Who searches: only rooms it is a member of are searched.
    pub user: UserId,
    /// Only this room, when given.
    pub room: Option<RoomId>,
    /// The query's [`terms`](crate::search::terms): each must begin a term of the message.
    pub terms: Vec<String>,
    /// Only messages with a smaller id (the page cursor).
    pub before: Option<MessageId>,
    /// At most this many.
    pub limit: u32,
}

/// Threads: a root message and the replies that name it, in the room's sequence.
///
/// # Contract
///
/// - A thread's summary and a follower's unread count are kept as each reply is stored (see
///   [`MessageStore::append_message`]): reading them costs the same however long the thread.
/// - A member's marker in a thread only moves forward. Reading a thread does not follow it.
/// - Reads of an unknown room or thread are empty, not errors.
#[async_trait]
pub trait ThreadStore: Send + Sync {
    /// A page of the replies in the thread of `root`, as [`MessageStore::messages`] pages a
    /// room's history.
    async fn replies(
        &self,
        room: RoomId,
        root: MessageId,
        range: SeqRange,
    ) -> StoreResult<Vec<Message>>;

    /// The room's threads (roots with replies, tombstones included), the most recently
    /// active first: those whose newest reply is numbered below `before`, at most `limit`,
    /// each with the replies `viewer` has not read (all of them without a marker).
    async fn threads(
        &self,
        room: RoomId,
        viewer: UserId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<Thread>>;

    /// Moves `user`'s marker in the thread of `root` to its newest reply numbered `seq` or
    /// less, never back, atomically; returns the replies left unread.
    ///
    /// Errors: [`StoreError::NotFound`] (`Member` when `user` is not a member of the room;
    /// `Thread` when `root` is not a message of the room, or is a reply itself).
    async fn mark_thread_read(
        &self,
        room: RoomId,
        root: MessageId,
        user: UserId,
        seq: u64,
    ) -> StoreResult<u64>;

    /// The room's thread markers, ordered by the root's sequence number, then user id: what
    /// an export writes. An unknown room has none.
    async fn thread_markers(&self, room: RoomId) -> StoreResult<Vec<ThreadMarker>>;

    /// Sets the summary of the thread of `root` (a message of the room; `None`: no replies)
    /// and its place among the room's threads, atomically, if the room's counters are still
    /// `seen`; returns whether it did. The counter check's repair of a summary.
    ///
    /// Errors: [`StoreError::NotFound`] (`Room`; `Message` when `root` is not in the room).
    async fn repair_thread(
        &self,
        seen: SeenCounters,
        root: MessageId,
        summary: Option<&ThreadSummary>,
    ) -> StoreResult<bool>;
}

/// A member's place in a thread ([`ThreadStore::thread_markers`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadMarker {
    /// The thread's root, by its sequence number.
    pub root_seq: u64,
    /// The member.
    pub user: UserId,
    /// Replies read, counted in the thread's order.
    pub read: u64,
    /// Whether the member follows the thread (its replies count as unread).
    pub following: bool,
}

/// Reactions: a member's mark of a key (an emoji, a shortcode) on a message.
///
/// # Contract
///
/// - A user has at most one reaction of each key on a message, however many adds of it arrive
///   at once; a message has at most the `max_keys` different keys its adds allowed.
/// - Only members of the message's room add or remove reactions, and only on live messages.
/// - An add or remove that changes something gives the message the room's next change cursor
///   in the same step (as an edit does), so the change feed carries it; one that changes
///   nothing writes nothing.
/// - A tombstone has no reactions (deleting a message removes them, in the same step); deleting
///   a room removes its messages' reactions.
/// - Reading a page's reactions costs the same however long the history is.
#[async_trait]
pub trait ReactionStore: Send + Sync {
    /// Adds `user`'s reaction `key` to a message, atomically checking, in this order, that the
    /// message exists and is live (else [`StoreError::NotFound`]`(Message)`), that `user` is a
    /// member of its room (else `NotFound(Member)`), and, when no one has reacted with `key` on
    /// it yet, that it has fewer than `max_keys` different keys (else
    /// [`Conflict::TooManyReactions`](crate::Conflict::TooManyReactions)).
    ///
    /// Returns the message with its new change cursor, or `None` when the reaction was there
    /// already (nothing written).
    async fn add_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
        max_keys: u32,
    ) -> StoreResult<Option<Message>>;

    /// Removes `user`'s reaction `key` from a message, with the checks of
    /// [`add_reaction`](Self::add_reaction) but the last. Returns the message with its new
    /// change cursor, or `None` when there was no such reaction (nothing written).
    async fn remove_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
    ) -> StoreResult<Option<Message>>;

    /// The reactions on the room's messages numbered in `seqs`, ordered by sequence
    /// number then key (bytewise), each with its count and whether `viewer` reacted with it.
    /// An unknown room has none.
    async fn reactions(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
        viewer: UserId,
    ) -> StoreResult<Vec<(u64, Reaction)>>;

    /// Every reaction on the room's messages numbered in `seqs`, as (sequence number,
    /// key, user), ordered by sequence number, key (bytewise), then user id: what an export
    /// writes. An unknown room has none.
    async fn reactors(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<(u64, String, UserId)>>;
}

/// The writes of an import ([`crate::import`]): records taken as an export wrote them, every
/// id, sequence number, change cursor and marker kept, and what a store derives from them
/// (thread summaries and numbering, mention counts, search terms, the direct pair, the
/// transaction ids) derived as [`MessageStore::append_message`] derives it.
///
/// # Contract
///
/// - Nothing is checked against permissions or capacity: the records are a store's contents.
/// - Each write is atomic, and writing a record that is there already (a resumed import)
///   changes nothing, except thread markers, which are set.
/// - A room's messages arrive in sequence order, a batch after the room's `last_seq`; its
///   counters are the ones its messages give until [`finish_room_import`](Self::finish_room_import)
///   sets them as exported.
#[async_trait]
pub trait ImportStore: Send + Sync {
    /// The mark of an import that started and has not finished (`None` when there is none).
    async fn import_mark(&self) -> StoreResult<Option<String>>;

    /// Sets or clears the mark of an unfinished import.
    async fn set_import_mark(&self, mark: Option<&str>) -> StoreResult<()>;

    /// Stores a room (its password hash included) without members or messages and with its
    /// counters at 0, registering its alias.
    ///
    /// Errors: [`Conflict::AliasTaken`](crate::Conflict::AliasTaken).
    async fn import_room(&self, room: &Room) -> StoreResult<()>;

    /// Stores memberships of a room as they are, read markers included.
    async fn import_members(&self, room: RoomId, members: &[Member]) -> StoreResult<()>;

    /// Stores messages of a room as they are (tombstones included), with the mentions counted
    /// for them: the next ones after the room's `last_seq`, in sequence order. Each counts in
    /// its thread's summary and its text is indexed for search; no other mention is counted
    /// and no thread marker made (they are imported). The room's `last_seq` becomes the last
    /// one's.
    async fn import_messages(
        &self,
        room: RoomId,
        messages: &[Message],
        mentions: &[Mention],
    ) -> StoreResult<()>;

    /// Stores reactions on messages of a room, as (sequence number, key, user).
    async fn import_reactions(
        &self,
        room: RoomId,
        reactions: &[(u64, String, UserId)],
    ) -> StoreResult<()>;

    /// Sets members' thread markers in a room.
    async fn import_thread_markers(
        &self,
        room: RoomId,
        markers: &[ThreadMarker],
    ) -> StoreResult<()>;

    /// Ends a room's import: sets its counters to `room`'s and, for a direct conversation,
    /// registers the pair of its two members.
    ///
    /// Errors: [`StoreError::NotFound`] (`Room`).
    async fn finish_room_import(&self, room: &Room) -> StoreResult<()>;
}

/// Read markers.
///
/// # Contract
///
/// - A marker only moves forward; an unread count is `last_seq - last_read_seq`, so the store
///   keeps no count to drift.
#[async_trait]
pub trait ReadMarkerStore: Send + Sync {
    /// Moves the member's read marker to `max(current, seq)`, atomically; returns the marker.
    ///
    /// Errors: [`StoreError::NotFound`] (`Member`).
    async fn advance_read_marker(&self, room: RoomId, user: UserId, seq: u64) -> StoreResult<u64>;

    /// `user`'s unread mentions and unread replies in followed threads, per room it is a
    /// member of (only `room`, when given), leaving out rooms where both are 0. A mention is
    /// unread while its message is after the user's read marker. Costs the same however long
    /// the history.
    async fn unread_counts(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> StoreResult<Vec<UnreadCounts>>;
}

/// One attempt to count against a key's budget ([`AttemptStore::count_attempt`]): its two
/// times named, as they are easily swapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The key it counts against.
    pub key: String,
    /// How many attempts a window lets through.
    pub allowed: u32,
    /// When it is made.
    pub at: DateTime<Utc>,
    /// When the window it opens, if it opens one, ends.
    pub window_end: DateTime<Utc>,
}

/// Counters of attempts in fixed windows, keyed by text (the failed-login lockout uses one per
/// account): shared by every engine on the store, so a limit holds however requests are spread
/// over processes.
///
/// # Contract
///
/// - Keys are opaque text; the store only counts. Time is the attempt's `at`.
/// - Of any number of concurrent attempts on one key, no more than `allowed` go ahead per window.
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Counts one attempt against its key, atomically, unless `allowed` attempts were already
    /// counted in the key's window. A key has no window until an attempt is counted; the first
    /// one counted while no window is open at `at` opens a window that ends at `window_end`.
    ///
    /// Returns `None` when the attempt was counted (go ahead), or `Some(end)` when it was
    /// refused, `end` being when the open window ends. To ensure correctness: concurrent calls
    /// (from any process) are counted one after the other, so no more than `allowed` go ahead
    /// per window.
    async fn count_attempt(&self, attempt: Attempt) -> StoreResult<Option<DateTime<Utc>>>;

    /// Forgets the key's attempts (its window closes). Unknown keys are not an error.
    async fn clear_attempts(&self, key: &str) -> StoreResult<()>;

    /// Deletes the windows that ended before `now`; returns how many.
    async fn purge_attempts(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}

/// A live connection as recorded in the store: who is online, seen from any process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The connection.
    pub id: ConnectionId,
    /// The engine that holds it and renews it.
    pub node: NodeId,
    /// The connected user.
    pub user_id: UserId,
    /// When it stops counting unless renewed: a process that crashed stops renewing, so its
    /// users do not stay online.
    pub expires_at: DateTime<Utc>,
}

/// Live connections, the source of `online`.
///
/// # Contract
///
/// - A connection counts until it is closed or its expiry passes; a process that dies stops
///   renewing, so its users go offline within the connection lifetime, with no cleanup needed.
/// - Time is the `now` passed in.
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// Records a connection.
    async fn open_connection(&self, connection: &Connection) -> StoreResult<()>;

    /// Deletes a connection. Closing an unknown connection is not an error.
    async fn close_connection(&self, id: ConnectionId) -> StoreResult<()>;

    /// Moves the expiry of every connection of `node` to `expires_at` (the node's heartbeat).
    async fn renew_connections(&self, node: NodeId, expires_at: DateTime<Utc>) -> StoreResult<()>;

    /// Those of `users` who have a connection that has not expired at `now`, each once, in no
    /// particular order.
    async fn online_users(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<UserId>>;

    /// Deletes connections that expired before `now`; returns how many.
    async fn purge_connections(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}
