//! Reactions: adding and removing them, and filling them in on the messages `Chat` returns.

use std::collections::HashMap;

use super::Chat;
use crate::error::{Denied, Entity, Error, Result, StoreError};
use crate::events::{Event, ReactionChange};
use crate::ids::{MessageId, RoomId, UserId};
use crate::message::Message;
use crate::page::Page;
use crate::validate;

impl Chat {
    /// Adds the actor's reaction `key` (an emoji or a shortcode, 1 to 64 bytes without control
    /// characters) to a message of a room it belongs to. Adding it again changes nothing.
    /// Returns the message with its reactions as the actor sees them.
    ///
    /// Errors: `Invalid(Key)`; `Forbidden` (not a member); `NotFound(Message)` (none in this
    /// room, or deleted); `Conflict(TooManyReactions)` (a key new to a message that has
    /// [`ChatConfig::max_reaction_keys`](crate::ChatConfig::max_reaction_keys) already).
    pub async fn add_reaction(
        &self,
        actor: UserId,
        room_id: RoomId,
        id: MessageId,
        key: &str,
    ) -> Result<Message> {
        validate::reaction_key(key)?;
        self.react(actor, room_id, id, key, true).await
    }

    /// Takes the actor's reaction `key` back from a message. Taking back one that is not there
    /// changes nothing. Returns the message with its reactions as the actor sees them.
    ///
    /// Errors: as [`Chat::add_reaction`], but the conflict.
    pub async fn remove_reaction(
        &self,
        actor: UserId,
        room_id: RoomId,
        id: MessageId,
        key: &str,
    ) -> Result<Message> {
        validate::reaction_key(key)?;
        self.react(actor, room_id, id, key, false).await
    }

    async fn react(
        &self,
        actor: UserId,
        room_id: RoomId,
        id: MessageId,
        key: &str,
        add: bool,
    ) -> Result<Message> {
        // The store checks membership and that the message is live again, in the same step as
        // the change.
        self.membership(actor, room_id).await?;
        let message = self.message_in(room_id, id).await?;
        let changed = if add {
            let max_keys = self.config.max_reaction_keys;
            self.store.add_reaction(id, actor, key, max_keys).await
        } else {
            self.store.remove_reaction(id, actor, key).await
        };
        let changed = changed.map_err(|error| match error {
            StoreError::NotFound(Entity::Member) => Error::Forbidden(Denied::NotMember),
            other => other.into(),
        })?;
        let message = match changed {
            Some(changed) => {
                let reaction = ReactionChange {
                    room_id,
                    message_id: id,
                    seq: changed.seq,
                    change_id: changed.change_id,
                    user_id: actor,
                    key: key.to_owned(),
                };
                self.publish(if add {
                    Event::ReactionAdded { reaction }
                } else {
                    Event::ReactionRemoved { reaction }
                });
                changed
            }
            None => message,
        };
        let mut messages = self
            .with_reactions(actor, vec![message.seen_by(actor)])
            .await?;
        messages.pop().ok_or(Error::NotFound(Entity::Message))
    }

    /// A page with its messages' reactions, as [`Chat::with_reactions`].
    pub(super) async fn with_reactions_on<C>(
        &self,
        viewer: UserId,
        page: Page<Message, C>,
    ) -> Result<Page<Message, C>> {
        Ok(Page {
            items: self.with_reactions(viewer, page.items).await?,
            next_cursor: page.next_cursor,
        })
    }

    /// `messages` (of one room or grouped room by room, as every page is) with their
    /// reactions as `viewer` sees them: one store read per room for a page of history; a page
    /// whose messages lie far apart (a thread's replies, mentions) reads each cluster of close
    /// sequence numbers alone, so no read spans the history between them.
    pub(super) async fn with_reactions(
        &self,
        viewer: UserId,
        mut messages: Vec<Message>,
    ) -> Result<Vec<Message>> {
        /// Sequence numbers this close share one read.
        const CLUSTER: u64 = 16;
        for run in messages.chunk_by_mut(|a, b| a.room_id == b.room_id) {
            let mut live: Vec<u64> = run
                .iter()
                .filter(|m| !m.is_deleted())
                .map(|m| m.seq)
                .collect();
            live.sort_unstable();
            let room = run[0].room_id;
            let at: HashMap<u64, usize> = run.iter().enumerate().map(|(i, m)| (m.seq, i)).collect();
            for cluster in live.chunk_by(|a, b| b - a <= CLUSTER) {
                let (first, last) = (cluster[0], cluster[cluster.len() - 1]);
                for (seq, reaction) in self.store.reactions(room, first..=last, viewer).await? {
                    if let Some(&i) = at.get(&seq) {
                        run[i].reactions.push(reaction);
                    }
                }
            }
        }
        Ok(messages)
    }
}
