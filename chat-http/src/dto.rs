//! The JSON objects of the API: requests as sent, responses as documented in the OpenAPI.
//! Field names are the API's own and self-describing; they are not documented one by one.
#![allow(missing_docs)]

use chat_core::{
    DirectoryEntry, Member, Message, MessageId, Profile, Role, Room, RoomId, RoomKind, User,
    UserId, Visibility,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ApiError, ApiResult};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Free profile fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileDto {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
    pub bio: Option<String>,
}

impl From<Profile> for ProfileDto {
    fn from(p: Profile) -> Self {
        Self {
            first_name: p.first_name,
            last_name: p.last_name,
            phone: p.phone,
            address: p.address,
            bio: p.bio,
        }
    }
}

impl From<ProfileDto> for Profile {
    fn from(p: ProfileDto) -> Self {
        Self {
            first_name: p.first_name,
            last_name: p.last_name,
            phone: p.phone,
            address: p.address,
            bio: p.bio,
        }
    }
}

/// A user's status: `online`, `away`, `busy` or `offline` ([`chat_core::Status`] with a schema).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Online,
    Away,
    Busy,
    Offline,
}

impl From<chat_core::Status> for Status {
    fn from(status: chat_core::Status) -> Self {
        match status {
            chat_core::Status::Online => Self::Online,
            chat_core::Status::Away => Self::Away,
            chat_core::Status::Busy => Self::Busy,
            chat_core::Status::Offline => Self::Offline,
        }
    }
}

impl From<Status> for chat_core::Status {
    fn from(status: Status) -> Self {
        match status {
            Status::Online => Self::Online,
            Status::Away => Self::Away,
            Status::Busy => Self::Busy,
            Status::Offline => Self::Offline,
        }
    }
}

/// A user. `email`, `profile` and `is_admin` are shown to the user and to admins only.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserOut {
    pub id: Uuid,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileDto>,
    pub status: Status,
    pub status_message: Option<String>,
    /// Whether the user has a live WebSocket on this server.
    pub online: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_admin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

impl UserOut {
    /// Every field: for the user and for admins.
    pub fn full(user: User, online: bool) -> Self {
        Self {
            id: user.id.0,
            username: user.username,
            email: user.email,
            display_name: user.display_name,
            profile: Some(user.profile.into()),
            status: user.status.into(),
            status_message: user.status_message,
            online,
            is_admin: Some(user.is_admin),
            created_at: Some(user.created_at),
        }
    }

    /// The public directory entry.
    pub fn public(entry: DirectoryEntry, online: bool) -> Self {
        Self {
            id: entry.id.0,
            username: entry.username,
            email: None,
            display_name: entry.display_name,
            profile: None,
            status: entry.status.into(),
            status_message: entry.status_message,
            online,
            is_admin: None,
            created_at: None,
        }
    }
}

/// `group` or `direct`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum KindDto {
    Group,
    Direct,
}

/// `public` or `private`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum VisibilityDto {
    Public,
    Private,
}

impl From<VisibilityDto> for Visibility {
    fn from(v: VisibilityDto) -> Self {
        match v {
            VisibilityDto::Public => Self::Public,
            VisibilityDto::Private => Self::Private,
        }
    }
}

/// A room or direct conversation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RoomOut {
    pub id: Uuid,
    pub kind: KindDto,
    pub name: String,
    pub topic: Option<String>,
    pub alias: Option<String>,
    pub visibility: VisibilityDto,
    pub capacity: Option<u32>,
    pub has_password: bool,
    pub owner_id: Option<Uuid>,
    pub member_count: u32,
    pub last_seq: u64,
    pub created_at: DateTime<Utc>,
}

impl From<Room> for RoomOut {
    fn from(room: Room) -> Self {
        Self {
            id: room.id.0,
            kind: match room.kind {
                RoomKind::Group => KindDto::Group,
                RoomKind::Direct => KindDto::Direct,
            },
            has_password: room.has_password(),
            name: room.name,
            topic: room.topic,
            alias: room.alias,
            visibility: match room.visibility {
                Visibility::Public => VisibilityDto::Public,
                Visibility::Private => VisibilityDto::Private,
            },
            capacity: room.capacity,
            owner_id: room.owner.map(|o| o.0),
            member_count: room.member_count,
            last_seq: room.last_seq,
            created_at: room.created_at,
        }
    }
}

/// `owner`, `admin` or `member`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RoleDto {
    Owner,
    Admin,
    Member,
}

impl From<Role> for RoleDto {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => Self::Owner,
            Role::Admin => Self::Admin,
            Role::Member => Self::Member,
        }
    }
}

impl From<RoleDto> for Role {
    fn from(r: RoleDto) -> Self {
        match r {
            RoleDto::Owner => Self::Owner,
            RoleDto::Admin => Self::Admin,
            RoleDto::Member => Self::Member,
        }
    }
}

/// A membership.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MemberOut {
    pub room_id: Uuid,
    pub user_id: Uuid,
    pub role: RoleDto,
    pub joined_at: DateTime<Utc>,
}

impl From<Member> for MemberOut {
    fn from(m: Member) -> Self {
        Self {
            room_id: m.room_id.0,
            user_id: m.user_id.0,
            role: m.role.into(),
            joined_at: m.joined_at,
        }
    }
}

/// A message. A deleted one keeps its place with an empty body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MessageOut {
    pub id: Uuid,
    pub room_id: Uuid,
    pub seq: u64,
    pub sender_id: Uuid,
    pub body: String,
    pub reply_to: Option<Uuid>,
    /// The root of the thread this message replies in.
    pub thread_root: Option<Uuid>,
    /// On a thread's root, once replied to: the thread's summary.
    pub thread: Option<ThreadSummaryOut>,
    /// The members it mentions.
    pub mentions: Vec<Uuid>,
    /// Whether it mentions every member of the room.
    pub mentions_room: bool,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
    /// Shown to the sender only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// The room's change cursor at this message's latest change (for catching up).
    pub change_id: u64,
    /// Its reactions, by key: how many reacted with each, and whether you did.
    pub reactions: Vec<ReactionOut>,
}

/// A thread's summary, on its root message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThreadSummaryOut {
    /// Replies in the thread (deleted ones included).
    pub reply_count: u64,
    /// The newest reply's sequence number.
    pub last_reply_seq: u64,
    pub last_reply_at: DateTime<Utc>,
    /// The first 10 different repliers.
    pub participants: Vec<Uuid>,
}

/// One of a room's threads: its root, and the replies in it you have not read.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ThreadOut {
    pub root: MessageOut,
    pub unread: u64,
}

impl From<chat_core::Thread> for ThreadOut {
    fn from(thread: chat_core::Thread) -> Self {
        Self {
            root: thread.root.into(),
            unread: thread.unread,
        }
    }
}

/// A thread marker after marking.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ThreadMarkedOut {
    pub root_id: Uuid,
    /// Replies in the thread you have still not read.
    pub unread: u64,
}

/// One reaction key on a message.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReactionOut {
    /// An emoji or a shortcode.
    pub key: String,
    /// How many members reacted with it.
    pub count: u32,
    /// Whether you did.
    pub me: bool,
}

impl From<Message> for MessageOut {
    /// The message as `Chat` handed it out (a transaction id only to its sender).
    fn from(message: Message) -> Self {
        Self {
            id: message.id.0,
            room_id: message.room_id.0,
            seq: message.seq,
            sender_id: message.sender.0,
            deleted: message.is_deleted(),
            txn_id: message.txn_id,
            body: message.body,
            reply_to: message.reply_to.map(|m| m.0),
            thread_root: message.thread_root.map(|m| m.0),
            thread: message.thread.map(|t| ThreadSummaryOut {
                reply_count: t.reply_count,
                last_reply_seq: t.last_reply_seq,
                last_reply_at: t.last_reply_at,
                participants: t.participants.into_iter().map(|u| u.0).collect(),
            }),
            mentions: message.mentions.into_iter().map(|u| u.0).collect(),
            mentions_room: message.mentions_room,
            metadata: message.metadata,
            created_at: message.created_at,
            edited_at: message.edited_at,
            change_id: message.change_id,
            reactions: message
                .reactions
                .into_iter()
                .map(|r| ReactionOut {
                    key: r.key,
                    count: r.count,
                    me: r.me,
                })
                .collect(),
        }
    }
}

/// A list page.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ListPage<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` at the end.
    pub next_cursor: Option<String>,
}

impl<T> ListPage<T> {
    /// A core page, each item converted and the cursor written as text.
    pub(crate) fn of<U: Into<T>, C: std::fmt::Display>(page: chat_core::Page<U, C>) -> Self {
        Self {
            next_cursor: page.next_cursor.as_ref().map(C::to_string),
            items: page.items.into_iter().map(Into::into).collect(),
        }
    }
}

/// The `cursor` of a list request: one of the `next_cursor`s this list gave.
pub(crate) fn cursor<C: std::str::FromStr>(cursor: Option<&str>) -> ApiResult<Option<C>> {
    cursor
        .map(|cursor| {
            cursor
                .parse()
                .map_err(|_| ApiError::malformed("cursor is not one this list gave"))
        })
        .transpose()
}

/// A page of history, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HistoryOut {
    pub items: Vec<MessageOut>,
    /// More messages lie beyond the page in the direction read.
    pub has_more: bool,
    /// Where the next page starts: pass it as `before` when reading back, as `after` when
    /// reading forward; `null` at the end.
    pub next_cursor: Option<u64>,
}

impl From<chat_core::Page<chat_core::Message>> for HistoryOut {
    fn from(page: chat_core::Page<chat_core::Message>) -> Self {
        Self {
            has_more: page.has_more(),
            next_cursor: page.next_cursor,
            items: page.items.into_iter().map(MessageOut::from).collect(),
        }
    }
}

/// The changes of a room after a cursor.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChangesOut {
    /// Each changed message once, in its latest state, in change order.
    pub items: Vec<MessageOut>,
    /// Pass as `since` next time.
    pub next_cursor: u64,
    pub has_more: bool,
}

/// One of my direct conversations.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConversationOut {
    pub room: RoomOut,
    /// The other person; `null` once that account was deleted.
    pub other: Option<UserOut>,
    pub last_message: Option<MessageOut>,
    pub unread: u64,
}

/// A read marker after marking.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MarkedOut {
    pub room_id: Uuid,
    pub last_read_seq: u64,
    pub unread: u64,
    /// Unread messages that mention you.
    pub mentions: u64,
    /// Unread replies in the room's threads you follow.
    pub threads: u64,
}

/// A room's read state.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnreadOut {
    pub room_id: Uuid,
    pub last_read_seq: u64,
    pub last_seq: u64,
    pub unread: u64,
    /// Unread messages that mention you.
    pub mentions: u64,
    /// Unread replies in the room's threads you follow (started, replied in, mentioned in).
    pub threads: u64,
}

/// Unread counts across my rooms.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnreadSummaryOut {
    pub total: u64,
    /// Unread messages that mention you, over all rooms.
    pub mentions: u64,
    /// Unread replies in threads you follow, over all rooms.
    pub threads: u64,
    pub rooms: Vec<RoomUnreadOut>,
}

/// One room's unread counts.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoomUnreadOut {
    pub room_id: Uuid,
    pub unread: u64,
    pub mentions: u64,
    pub threads: u64,
}

/// Tokens after login or refresh.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokensOut {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The user (on login).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserOut>,
}

/// A WebSocket ticket.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TicketOut {
    /// Pass as `?ticket=` to `/api/v1/events`, once, within `expires_in` seconds.
    pub ticket: String,
    pub expires_in: u64,
}

/// `POST /auth/register`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterIn {
    pub username: String,
    pub password: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub profile: Option<ProfileDto>,
}

/// `POST /auth/login`: a username or an email, and the password.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginIn {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: String,
}

/// `POST /auth/refresh`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshIn {
    pub refresh_token: String,
}

/// A password change: the current password and the new one.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current: String,
    pub new: String,
}

/// `PATCH /users/me` and `/users/{id}`: absent fields stay, `null` clears.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct UserPatch {
    pub display_name: Option<String>,
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    pub profile: Option<ProfileDto>,
    pub status: Option<Status>,
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub status_message: Option<Option<String>>,
    /// Admins only, on other users.
    pub is_admin: Option<bool>,
    /// Oneself only.
    pub password: Option<PasswordChange>,
}

/// `POST /rooms`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoomIn {
    pub name: String,
    pub topic: Option<String>,
    pub alias: Option<String>,
    pub visibility: Option<VisibilityDto>,
    pub capacity: Option<u32>,
    pub password: Option<String>,
    #[serde(default)]
    pub members: Vec<Uuid>,
}

/// `PATCH /rooms/{id}`: absent fields stay, `null` clears.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoomPatch {
    pub name: Option<String>,
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub topic: Option<Option<String>>,
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub alias: Option<Option<String>>,
    pub visibility: Option<VisibilityDto>,
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub capacity: Option<Option<u32>>,
    #[serde(deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub password: Option<Option<String>>,
}

/// `POST /rooms/{id}/join`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct JoinIn {
    pub password: Option<String>,
}

/// `PUT /rooms/{id}/members/{user_id}`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MemberIn {
    /// Default `member`.
    pub role: Option<RoleDto>,
}

/// `PUT /rooms/{id}/owner`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnerIn {
    /// The member who becomes owner.
    pub user_id: Uuid,
}

/// A message to send.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    pub body: String,
    pub reply_to: Option<Uuid>,
    /// Reply in the thread of this message (of the same room, not itself a thread reply).
    pub thread_root: Option<Uuid>,
    /// Users to mention (at most 50): those who are not members of the room are dropped.
    #[serde(default)]
    pub mentions: Vec<Uuid>,
    /// Mention every member of the room (room owners and admins only).
    #[serde(default)]
    pub mentions_room: bool,
    /// A client transaction id: retrying with the same one returns the first message.
    pub txn_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

impl From<MessageIn> for chat_core::NewMessage {
    fn from(m: MessageIn) -> Self {
        Self {
            body: m.body,
            reply_to: m.reply_to.map(MessageId),
            thread_root: m.thread_root.map(MessageId),
            mentions: m.mentions.into_iter().map(UserId).collect(),
            mentions_room: m.mentions_room,
            txn_id: m.txn_id,
            metadata: m.metadata,
        }
    }
}

/// `PATCH /rooms/{id}/messages/{message_id}`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditIn {
    pub body: String,
}

/// `POST /rooms/{id}/read`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadIn {
    pub seq: u64,
}

/// `?q=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct ListQuery {
    /// Search text.
    pub q: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// `GET /search?q=&room_id=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct SearchQueryIn {
    /// The words to find (each begins a word of the message; case and accents aside).
    pub q: Option<String>,
    /// Only this room.
    pub room_id: Option<Uuid>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// A message found by a search, and its room.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchHitOut {
    pub message: MessageOut,
    pub room_id: Uuid,
}

impl From<chat_core::Message> for SearchHitOut {
    fn from(message: chat_core::Message) -> Self {
        Self {
            room_id: message.room_id.0,
            message: message.into(),
        }
    }
}

/// `GET /rooms?mine=&q=&cursor=&limit=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct RoomsQuery {
    /// Only my rooms (and conversations) instead of the public ones.
    pub mine: Option<bool>,
    pub q: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// `?before=&after=&limit=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct HistoryQuery {
    /// Only messages with a smaller sequence number.
    pub before: Option<u64>,
    /// Only messages with a larger sequence number.
    pub after: Option<u64>,
    pub limit: Option<u32>,
    /// Only the replies in the thread of this message.
    pub thread_root: Option<Uuid>,
}

/// `?since=&limit=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct ChangesQuery {
    /// The `next_cursor` of the last catch-up; 0 for everything.
    pub since: u64,
    pub limit: Option<u32>,
}

/// `?cursor=&limit=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct PageQuery {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    pub limit: Option<u32>,
}

/// `?limit=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(default)]
pub struct LimitQuery {
    pub limit: Option<u32>,
}

/// A present `null` is `Some(None)`; an absent field stays `None` (via `#[serde(default)]`).
fn double_option<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

pub(crate) fn room_id(id: Uuid) -> RoomId {
    RoomId(id)
}

pub(crate) fn user_id(id: Uuid) -> UserId {
    UserId(id)
}
