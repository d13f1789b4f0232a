//! Sending, editing, deleting and reading messages.

use super::Chat;
use crate::error::Field;
use crate::error::{Conflict, Denied, Entity, Error, Result, StoreError};
use crate::events::Event;
use crate::ids::{MessageId, RoomId, UserId};
use crate::message::{HistoryQuery, Message, NewMessage, Sent};
use crate::page::Page;
use crate::room::{Role, Room};
use crate::store::{NewStoredMessage, SeqRange};
use crate::validate;

impl Chat {
    /// Sends a message to a room the actor belongs to. Posting to a public room without a
    /// password joins the actor first.
    ///
    /// With a `txn_id` the send is idempotent: sending again with the same id returns the first
    /// message (`created: false`); the same id with different content is
    /// `Conflict(TxnIdReused)`.
    ///
    /// A message may reply in a thread (`thread_root`) and mention members (`mentions`: users
    /// who are not members of the room are dropped, so a mention never tells anyone who is in
    /// it) or the whole room (`mentions_room`, for owners and admins).
    ///
    /// Errors: `Invalid` (body, txn_id, metadata, reply_to, thread_root, mentions: more than
    /// [`ChatConfig::max_mentions`](crate::ChatConfig::max_mentions)); `Forbidden` (not a member
    /// of a room that needs joining; `mentions_room` from a plain member); `Conflict(RoomFull)`
    /// (implicit join).
    pub async fn send(&self, actor: UserId, room_id: RoomId, new: NewMessage) -> Result<Sent> {
        let stored = self.to_store(actor, room_id, &new)?;
        self.append(&stored, &new).await
    }

    /// The message as the store takes it, once valid.
    fn to_store(
        &self,
        actor: UserId,
        room_id: RoomId,
        new: &NewMessage,
    ) -> Result<NewStoredMessage> {
        validate::body(&new.body, self.config.max_body_chars)?;
        if let Some(txn_id) = &new.txn_id {
            validate::txn_id(txn_id, self.config.max_txn_id_bytes)?;
        }
        if let Some(metadata) = &new.metadata {
            validate::metadata(metadata, self.config.max_metadata_bytes)?;
        }
        if new.mentions.len() > self.config.max_mentions {
            return Err(Error::invalid(Field::Mentions, "names too many users"));
        }
        let mut mentions = new.mentions.clone();
        let mut seen = std::collections::HashSet::new();
        mentions.retain(|user| *user != actor && seen.insert(*user));
        Ok(NewStoredMessage {
            id: MessageId(self.ids.next_id()),
            room_id,
            sender: actor,
            body: new.body.clone(),
            reply_to: new.reply_to,
            thread_root: new.thread_root,
            mentions,
            mentions_room: new.mentions_room,
            txn_id: new.txn_id.clone(),
            metadata: new.metadata.clone(),
            created_at: self.now(),
        })
    }

    /// Appends a message [`to_store`](Self::to_store) made of `new`, then publishes it.
    async fn append(&self, stored: &NewStoredMessage, new: &NewMessage) -> Result<Sent> {
        let (actor, room_id) = (stored.sender, stored.room_id);
        if stored.mentions_room {
            let (_, me) = self.membership(actor, room_id).await?;
            if !me.role.can_manage() {
                return Err(Error::Forbidden(Denied::NotManager));
            }
        }
        // The store checks membership in the same step as the append: a member's send is one
        // store call. Anyone else goes the long way, through the rules of who may post.
        let sent = match self.store.append_message(stored).await {
            Err(StoreError::NotFound(Entity::Member)) => {
                let (room, member) = self.room_and_member(actor, room_id).await?;
                if member.is_none() {
                    self.join_to_post(&room, actor).await?;
                }
                self.store.append_message(stored).await
            }
            other => other,
        };
        let sent = sent.map_err(|error| match error {
            // Removed again between joining and posting.
            StoreError::NotFound(Entity::Member) => Error::Forbidden(Denied::NotMember),
            StoreError::NotFound(Entity::Message) => {
                Error::invalid(Field::ReplyTo, "no such message in this room")
            }
            StoreError::NotFound(Entity::Thread) => Error::invalid(
                Field::ThreadRoot,
                "no live message of this room that is not itself a reply in a thread",
            ),
            other => other.into(),
        })?;
        // Published as soon as it is stored, in whatever order concurrent sends return:
        // subscriptions order each room's messages by sequence number themselves.
        if sent.created {
            self.publish(Event::MessageCreated {
                message: sent.message.clone(),
            });
        }
        if !sent.created && !Self::same_send(&sent.message, room_id, new) {
            return Err(Error::Conflict(Conflict::TxnIdReused));
        }
        Ok(sent)
    }

    /// Whether a stored message is what this retried send asked for. Once the message was
    /// edited or deleted its original content is gone, so only the room can be compared.
    fn same_send(stored: &Message, room_id: RoomId, new: &NewMessage) -> bool {
        let changed_since = stored.edited_at.is_some() || stored.is_deleted();
        stored.room_id == room_id
            && (changed_since
                || (stored.body == new.body
                    && stored.reply_to == new.reply_to
                    && stored.thread_root == new.thread_root
                    && stored.mentions_room == new.mentions_room
                    && stored.metadata == new.metadata))
    }

    /// The implicit join of "post to any room without joining first": only public group rooms
    /// without a password.
    async fn join_to_post(&self, room: &Room, actor: UserId) -> Result<()> {
        if !room.is_open() {
            return Err(Error::Forbidden(Denied::NotMember));
        }
        self.actor(actor).await?;
        match self.admit(room.id, actor, Role::Member).await {
            // A concurrent send of the same user joined first: just as good.
            Err(Error::Conflict(Conflict::AlreadyMember)) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Sends a direct message to `to`, creating the conversation on first use.
    pub async fn send_direct(&self, actor: UserId, to: UserId, new: NewMessage) -> Result<Sent> {
        // A known conversation needs no other check: the append checks that it still exists
        // and that the actor is (still) a user and a member of it.
        let remembered = self.direct_rooms.get(actor, to);
        let room_id = match remembered {
            Some(room_id) => room_id,
            None => self.direct_room_id(actor, to).await?,
        };
        let mut stored = self.to_store(actor, room_id, &new)?;
        match self.append(&stored, &new).await {
            Err(Error::NotFound(Entity::Room)) if remembered.is_some() => {
                self.direct_rooms.forget(actor, to);
                stored.room_id = self.direct_room_id(actor, to).await?;
                self.append(&stored, &new).await
            }
            sent => sent,
        }
    }

    /// The room of the direct conversation of `actor` and `to`, created on first use, and
    /// remembered.
    async fn direct_room_id(&self, actor: UserId, to: UserId) -> Result<RoomId> {
        let existing = if actor == to {
            None
        } else {
            self.store.direct_room(actor, to).await?
        };
        let room = match existing {
            Some(room) => room,
            None => self.direct_room(actor, to).await?,
        };
        self.direct_rooms.insert(actor, to, room.id);
        Ok(room.id)
    }

    /// One message of a room (tombstones included): for members. This is also how a sender
    /// checks that a send was stored.
    pub async fn message(&self, actor: UserId, room_id: RoomId, id: MessageId) -> Result<Message> {
        self.membership(actor, room_id).await?;
        let message = self.message_in(room_id, id).await?.seen_by(actor);
        let mut one = self.with_reactions(actor, vec![message]).await?;
        one.pop().ok_or(Error::NotFound(Entity::Message))
    }

    pub(super) async fn message_in(&self, room_id: RoomId, id: MessageId) -> Result<Message> {
        self.store
            .message(id)
            .await?
            .filter(|m| m.room_id == room_id)
            .ok_or(Error::NotFound(Entity::Message))
    }

    /// Replaces the body of the actor's own message.
    ///
    /// Errors: `Forbidden` (someone else's message); `NotFound(Message)` (also once deleted).
    pub async fn edit_message(
        &self,
        actor: UserId,
        room_id: RoomId,
        id: MessageId,
        body: &str,
    ) -> Result<Message> {
        validate::body(body, self.config.max_body_chars)?;
        self.membership(actor, room_id).await?;
        let message = self.message_in(room_id, id).await?;
        if message.sender != actor {
            return Err(Error::Forbidden(Denied::NotSender));
        }
        if message.is_deleted() {
            return Err(Error::NotFound(Entity::Message));
        }
        let message = self.store.edit_message(id, body, self.now()).await?;
        self.publish(Event::MessageUpdated {
            message: message.clone(),
        });
        let mut one = self.with_reactions(actor, vec![message]).await?;
        one.pop().ok_or(Error::NotFound(Entity::Message))
    }

    /// Deletes a message, leaving a tombstone that keeps its sequence number: its sender, or
    /// the room's owner or admins.
    pub async fn delete_message(
        &self,
        actor: UserId,
        room_id: RoomId,
        id: MessageId,
    ) -> Result<Message> {
        let (_, me) = self.membership(actor, room_id).await?;
        let message = self.message_in(room_id, id).await?;
        if message.sender != actor && !me.role.can_manage() {
            return Err(Error::Forbidden(Denied::NotSenderOrManager));
        }
        if message.is_deleted() {
            return Err(Error::NotFound(Entity::Message));
        }
        let message = self.store.delete_message(id, self.now()).await?;
        self.publish(Event::MessageDeleted {
            message: message.clone(),
        });
        Ok(message.seen_by(actor))
    }

    /// A page of a room's history, oldest first (see [`HistoryQuery`]): for members.
    ///
    /// `next_cursor` continues in the direction read: pass it as `before` when reading back,
    /// as `after` when reading forward.
    pub async fn history(
        &self,
        actor: UserId,
        room_id: RoomId,
        query: HistoryQuery,
    ) -> Result<Page<Message>> {
        self.membership(actor, room_id).await?;
        self.page(room_id, query, actor).await
    }

    /// A page of a room's history as `viewer` sees it.
    pub(super) async fn page(
        &self,
        room_id: RoomId,
        query: HistoryQuery,
        viewer: UserId,
    ) -> Result<Page<Message>> {
        self.page_of(room_id, None, query, viewer).await
    }

    /// Reads `limit + 1` messages of the room (only the replies in the thread of `thread`,
    /// when given) to learn whether more lie beyond the page; as `viewer` sees them.
    pub(super) async fn page_of(
        &self,
        room_id: RoomId,
        thread: Option<MessageId>,
        query: HistoryQuery,
        viewer: UserId,
    ) -> Result<Page<Message>> {
        let limit = self.page_limit(query.limit)?;
        let range = SeqRange {
            before: query.before,
            after: query.after,
            limit: limit + 1,
        };
        let items = match thread {
            Some(root) => self.store.replies(room_id, root, range).await?,
            None => self.store.messages(room_id, range).await?,
        };
        let items = items.into_iter().map(|m| m.seen_by(viewer)).collect();
        let mut items = self.with_reactions(viewer, items).await?;
        if query.after.is_some() {
            return Ok(Page::cut(items, limit, |m| m.seq));
        }
        // Reading back, the extra message is the oldest one.
        if items.len() > limit as usize {
            items.remove(0);
            let next_cursor = items.first().map(|m| m.seq);
            return Ok(Page { items, next_cursor });
        }
        Ok(Page::last(items))
    }

    /// The history of the actor's direct conversation with `other` (empty if there is none).
    pub async fn direct_history(
        &self,
        actor: UserId,
        other: UserId,
        query: HistoryQuery,
    ) -> Result<Page<Message>> {
        self.actor(actor).await?;
        match self.store.direct_room(actor, other).await? {
            Some(room) => self.page(room.id, query, actor).await,
            None => Ok(Page::last(Vec::new())),
        }
    }

    /// Every change of a room after `cursor` — messages created, edited or deleted — each
    /// message once in its latest state, in change order: what a client that was away must
    /// apply to be exactly up to date. Start from 0; continue from `next_cursor` while there is
    /// one, then from the last item's [`Message::change_id`].
    pub async fn changes(
        &self,
        actor: UserId,
        room_id: RoomId,
        cursor: u64,
        limit: Option<u32>,
    ) -> Result<Page<Message>> {
        self.membership(actor, room_id).await?;
        let limit = validate::limit(limit, self.config.max_page_size, self.config.max_page_size)?;
        let items = self.store.changes(room_id, cursor, limit + 1).await?;
        let items = items.into_iter().map(|m| m.seen_by(actor)).collect();
        let items = self.with_reactions(actor, items).await?;
        Ok(Page::cut(items, limit, |m| m.change_id))
    }
}
