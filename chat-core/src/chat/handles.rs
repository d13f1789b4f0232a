//! Handles: the engine acting as one user ([`AsUser`]), and as that user in one room
//! ([`InRoom`]), so that the common path reads `me.room(r).send(message)` and a second user id
//! can only mean the other user. Each call is the flat [`Chat`] method with the same name; the
//! same checks apply.

use std::collections::HashSet;

use super::Chat;
use crate::error::Result;
use crate::events::Subscription;
use crate::ids::{MessageId, RoomId, UserId};
use crate::message::{
    DirectConversation, HistoryQuery, Message, NewMessage, ReadState, Sent, Thread, UnreadSummary,
};
use crate::page::{MessageCursor, Page};
use crate::room::{Member, MemberCursor, Membership, NewRoom, Role, Room, RoomUpdate};
use crate::user::{User, UserUpdate};

impl Chat {
    /// The engine acting as `user` (cheap: a clone of the engine and an id).
    pub fn as_user(&self, user: UserId) -> AsUser {
        AsUser {
            chat: self.clone(),
            me: user,
        }
    }
}

/// The engine acting as one user. From [`Chat::as_user`].
#[derive(Debug, Clone)]
pub struct AsUser {
    chat: Chat,
    me: UserId,
}

impl AsUser {
    /// The acting user's id.
    pub fn id(&self) -> UserId {
        self.me
    }

    /// The same user acting in `room`.
    pub fn room(&self, room: RoomId) -> InRoom {
        InRoom {
            chat: self.chat.clone(),
            me: self.me,
            room,
        }
    }

    /// The acting user's own account ([`Chat::user`]).
    pub async fn account(&self) -> Result<User> {
        self.chat.user(self.me, self.me).await
    }

    /// Changes the acting user's own profile, status or password ([`Chat::update_user`]).
    pub async fn update(&self, update: UserUpdate) -> Result<User> {
        self.chat.update_user(self.me, self.me, update).await
    }

    /// Creates a group room the acting user owns ([`Chat::create_room`]).
    pub async fn create_room(&self, new: NewRoom) -> Result<Room> {
        self.chat.create_room(self.me, new).await
    }

    /// The acting user's rooms and conversations, paged ([`Chat::rooms_of`]).
    pub async fn rooms(
        &self,
        search: Option<&str>,
        after: Option<RoomId>,
        limit: Option<u32>,
    ) -> Result<Page<Membership, RoomId>> {
        self.chat
            .rooms_of(self.me, self.me, search, after, limit)
            .await
    }

    /// Sends a direct message to `to` ([`Chat::send_direct`]).
    pub async fn send_direct(&self, to: UserId, new: NewMessage) -> Result<Sent> {
        self.chat.send_direct(self.me, to, new).await
    }

    /// The direct conversation with `other`, created on first use ([`Chat::direct_room`]).
    pub async fn direct_room(&self, other: UserId) -> Result<InRoom> {
        let room = self.chat.direct_room(self.me, other).await?;
        Ok(self.room(room.id))
    }

    /// The acting user's direct conversations, paged ([`Chat::direct_conversations`]).
    pub async fn direct_conversations(
        &self,
        after: Option<RoomId>,
        limit: Option<u32>,
    ) -> Result<Page<DirectConversation, RoomId>> {
        self.chat.direct_conversations(self.me, after, limit).await
    }

    /// Messages the acting user has not read, paged ([`Chat::unread_messages`]).
    pub async fn unread_messages(
        &self,
        after: Option<MessageCursor>,
        limit: Option<u32>,
    ) -> Result<Page<Message, MessageCursor>> {
        self.chat.unread_messages(self.me, after, limit).await
    }

    /// Direct messages others sent the acting user, paged ([`Chat::messages_to_me`]).
    pub async fn messages_to_me(
        &self,
        after: Option<MessageCursor>,
        limit: Option<u32>,
    ) -> Result<Page<Message, MessageCursor>> {
        self.chat.messages_to_me(self.me, after, limit).await
    }

    /// Unread counts across the acting user's rooms ([`Chat::unread_summary`]).
    pub async fn unread(&self) -> Result<UnreadSummary> {
        self.chat.unread_summary(self.me).await
    }

    /// The messages that mention the acting user, newest first ([`Chat::mentions`]).
    pub async fn mentions(
        &self,
        before: Option<MessageId>,
        limit: Option<u32>,
    ) -> Result<Page<Message, MessageId>> {
        self.chat.mentions(self.me, before, limit).await
    }

    /// Which of `users` are connected now ([`Chat::online`]).
    pub async fn online(&self, users: &[UserId]) -> Result<HashSet<UserId>> {
        self.chat.online(self.me, users).await
    }

    /// The acting user's live feed ([`Chat::subscribe`]).
    pub async fn subscribe(&self) -> Result<Subscription> {
        self.chat.subscribe(self.me).await
    }
}

/// The engine acting as one user in one room. From [`AsUser::room`].
#[derive(Debug, Clone)]
pub struct InRoom {
    chat: Chat,
    me: UserId,
    room: RoomId,
}

impl InRoom {
    /// The room's id.
    pub fn id(&self) -> RoomId {
        self.room
    }

    /// The room as the acting user may see it ([`Chat::room`]).
    pub async fn info(&self) -> Result<Room> {
        self.chat.room(self.me, self.room).await
    }

    /// Joins the room ([`Chat::join_room`]).
    pub async fn join(&self, password: Option<&str>) -> Result<Member> {
        self.chat.join_room(self.me, self.room, password).await
    }

    /// Leaves the room ([`Chat::leave_room`]).
    pub async fn leave(&self) -> Result<()> {
        self.chat.leave_room(self.me, self.room).await
    }

    /// Sends a message ([`Chat::send`]).
    pub async fn send(&self, new: NewMessage) -> Result<Sent> {
        self.chat.send(self.me, self.room, new).await
    }

    /// A page of history ([`Chat::history`]).
    pub async fn history(&self, query: HistoryQuery) -> Result<Page<Message>> {
        self.chat.history(self.me, self.room, query).await
    }

    /// What changed after `cursor` ([`Chat::changes`]).
    pub async fn changes(&self, cursor: u64, limit: Option<u32>) -> Result<Page<Message>> {
        self.chat.changes(self.me, self.room, cursor, limit).await
    }

    /// One message ([`Chat::message`]).
    pub async fn message(&self, id: MessageId) -> Result<Message> {
        self.chat.message(self.me, self.room, id).await
    }

    /// Edits one of the acting user's messages ([`Chat::edit_message`]).
    pub async fn edit(&self, id: MessageId, body: &str) -> Result<Message> {
        self.chat.edit_message(self.me, self.room, id, body).await
    }

    /// Adds the acting user's reaction to a message ([`Chat::add_reaction`]).
    pub async fn react(&self, id: MessageId, key: &str) -> Result<Message> {
        self.chat.add_reaction(self.me, self.room, id, key).await
    }

    /// Takes the acting user's reaction back ([`Chat::remove_reaction`]).
    pub async fn unreact(&self, id: MessageId, key: &str) -> Result<Message> {
        self.chat.remove_reaction(self.me, self.room, id, key).await
    }

    /// A page of the replies in a thread ([`Chat::thread_replies`]).
    pub async fn thread(&self, root: MessageId, query: HistoryQuery) -> Result<Page<Message>> {
        self.chat
            .thread_replies(self.me, self.room, root, query)
            .await
    }

    /// The room's threads, the most recently active first ([`Chat::threads`]).
    pub async fn threads(&self, before: Option<u64>, limit: Option<u32>) -> Result<Page<Thread>> {
        self.chat.threads(self.me, self.room, before, limit).await
    }

    /// Moves the acting user's marker in a thread ([`Chat::mark_thread_read`]).
    pub async fn mark_thread_read(&self, root: MessageId, seq: u64) -> Result<u64> {
        self.chat
            .mark_thread_read(self.me, self.room, root, seq)
            .await
    }

    /// Deletes a message, leaving a tombstone ([`Chat::delete_message`]).
    pub async fn delete_message(&self, id: MessageId) -> Result<Message> {
        self.chat.delete_message(self.me, self.room, id).await
    }

    /// Moves the acting user's read marker ([`Chat::mark_read`]).
    pub async fn mark_read(&self, seq: u64) -> Result<ReadState> {
        self.chat.mark_read(self.me, self.room, seq).await
    }

    /// The acting user's read marker and unread count ([`Chat::read_state`]).
    pub async fn read_state(&self) -> Result<ReadState> {
        self.chat.read_state(self.me, self.room).await
    }

    /// Says the acting user started or stopped typing ([`Chat::typing`]).
    pub async fn typing(&self, typing: bool) -> Result<()> {
        self.chat.typing(self.me, self.room, typing).await
    }

    /// A page of members in joining order ([`Chat::members`]).
    pub async fn members(
        &self,
        after: Option<MemberCursor>,
        limit: Option<u32>,
    ) -> Result<Page<Member, MemberCursor>> {
        self.chat.members(self.me, self.room, after, limit).await
    }

    /// Adds `user` with `role` ([`Chat::add_member`]).
    pub async fn add_member(&self, user: UserId, role: Role) -> Result<Member> {
        self.chat.add_member(self.me, self.room, user, role).await
    }

    /// Removes `user` ([`Chat::remove_member`]).
    pub async fn remove_member(&self, user: UserId) -> Result<()> {
        self.chat.remove_member(self.me, self.room, user).await
    }

    /// Changes `user`'s role; [`Role::Owner`] hands ownership over ([`Chat::set_role`]).
    pub async fn set_role(&self, user: UserId, role: Role) -> Result<Member> {
        self.chat.set_role(self.me, self.room, user, role).await
    }

    /// Edits the room ([`Chat::update_room`]).
    pub async fn update(&self, update: RoomUpdate) -> Result<Room> {
        self.chat.update_room(self.me, self.room, update).await
    }

    /// Deletes the room with its messages ([`Chat::delete_room`]).
    pub async fn delete(&self) -> Result<()> {
        self.chat.delete_room(self.me, self.room).await
    }
}
