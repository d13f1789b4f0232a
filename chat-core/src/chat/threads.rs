//! Threads and mentions: a thread's replies, a room's threads, thread markers, and the
//! messages that mention a user.

use super::Chat;
use crate::error::{Entity, Error, Field, Result, StoreError};
use crate::ids::{MessageId, RoomId, UserId};
use crate::message::{HistoryQuery, Message, Thread};
use crate::page::Page;

impl Chat {
    /// A page of the replies in the thread of `root`, oldest first, paged as
    /// [`Chat::history`]: for members. The replies are also in the room's history, in their
    /// place; a thread nobody replied to (or no thread) has none.
    pub async fn thread_replies(
        &self,
        actor: UserId,
        room_id: RoomId,
        root: MessageId,
        query: HistoryQuery,
    ) -> Result<Page<Message>> {
        self.membership(actor, room_id).await?;
        self.page_of(room_id, Some(root), query, actor).await
    }

    /// The room's threads, the most recently active first, each root with its summary and the
    /// actor's unread replies: for members. Continue with `next_cursor` as `before` (it is the
    /// last thread's [`last_reply_seq`](crate::ThreadSummary::last_reply_seq)).
    pub async fn threads(
        &self,
        actor: UserId,
        room_id: RoomId,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Page<Thread>> {
        self.membership(actor, room_id).await?;
        let limit = self.page_limit(limit)?;
        let threads = self
            .store
            .threads(room_id, actor, before, limit + 1)
            .await?;
        let mut page = Page::cut(threads, limit, |thread| {
            thread.root.thread.as_ref().map_or(0, |t| t.last_reply_seq)
        });
        let roots = page.items.iter().map(|t| t.root.clone().seen_by(actor));
        let roots = self.with_reactions(actor, roots.collect()).await?;
        for (thread, root) in page.items.iter_mut().zip(roots) {
            thread.root = root;
        }
        Ok(page)
    }

    /// Marks the thread of `root` read up to `seq` (its marker never moves back); returns the
    /// replies in it the actor has still not read. Reading a thread does not follow it: only
    /// starting it, replying in it or being mentioned in it does.
    ///
    /// Errors: `Forbidden` (not a member); `Invalid(seq)` beyond the room's newest message;
    /// `NotFound(Thread)` (`root` is no message of the room, or a reply itself).
    pub async fn mark_thread_read(
        &self,
        actor: UserId,
        room_id: RoomId,
        root: MessageId,
        seq: u64,
    ) -> Result<u64> {
        let (room, _) = self.membership(actor, room_id).await?;
        if seq > room.last_seq {
            return Err(Error::invalid(
                Field::Seq,
                "is beyond the room's newest message",
            ));
        }
        self.store
            .mark_thread_read(room_id, root, actor, seq)
            .await
            .map_err(|error| match error {
                StoreError::NotFound(Entity::Member) => {
                    Error::Forbidden(crate::error::Denied::NotMember)
                }
                other => other.into(),
            })
    }

    /// The messages that mention the actor, by name or as the room, in the rooms it belongs
    /// to, newest first; its own and deleted ones left out. Continue with `next_cursor` as
    /// `before`.
    pub async fn mentions(
        &self,
        actor: UserId,
        before: Option<MessageId>,
        limit: Option<u32>,
    ) -> Result<Page<Message, MessageId>> {
        self.actor(actor).await?;
        let limit = self.page_limit(limit)?;
        let items = self.store.mentions(actor, before, limit + 1).await?;
        let page = Page::cut(items, limit, |m| m.id).map(|m| m.seen_by(actor));
        self.with_reactions_on(actor, page).await
    }
}
