//! Read markers, unread counts and the "what's new for me" views.

use std::collections::HashMap;

use super::Chat;
use crate::error::Field;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ids::{RoomId, UserId};
use crate::message::{
    DirectConversation, HistoryQuery, Message, ReadState, RoomUnread, UnreadCounts, UnreadSummary,
};
use crate::page::{MessageCursor, Page};
use crate::room::{Member, Room, RoomKind};
use crate::store::{MemberQuery, RoomQuery, SeqRange};
use crate::validate;

fn read_state(room: &Room, member: &Member) -> ReadState {
    ReadState {
        room_id: room.id,
        last_read_seq: member.last_read_seq,
        last_seq: room.last_seq,
        unread: room.last_seq.saturating_sub(member.last_read_seq),
        mentions: 0,
        threads: 0,
    }
}

impl Chat {
    /// Marks the room read up to `seq` (the marker never moves back) and returns the read state.
    ///
    /// Errors: `Forbidden` (not a member); `Invalid(seq)` beyond the newest message.
    pub async fn mark_read(&self, actor: UserId, room_id: RoomId, seq: u64) -> Result<ReadState> {
        let (room, member) = self.membership(actor, room_id).await?;
        if seq > room.last_seq {
            return Err(Error::invalid(
                Field::Seq,
                "is beyond the room's newest message",
            ));
        }
        let marker = self.store.advance_read_marker(room_id, actor, seq).await?;
        if marker != member.last_read_seq {
            self.publish(Event::ReadUpdated {
                room_id,
                user_id: actor,
                last_read_seq: marker,
            });
        }
        let (room, member) = self.membership(actor, room_id).await?;
        self.with_counts(actor, read_state(&room, &member)).await
    }

    /// `state` with the actor's mention and thread counts in its room.
    async fn with_counts(&self, actor: UserId, mut state: ReadState) -> Result<ReadState> {
        let counts = self.store.unread_counts(actor, Some(state.room_id)).await?;
        if let Some(counts) = counts.first() {
            state.mentions = counts.mentions;
            state.threads = counts.threads;
        }
        Ok(state)
    }

    /// The actor's read state in a room: marker, newest sequence number, unread count, and
    /// how many unread messages mention the actor and unread replies its threads hold.
    ///
    /// The count is `last_seq - last_read_seq`: no history is scanned. The actor's own messages
    /// never count (sending moves the sender's marker); deleted messages after the marker do,
    /// and so do replies in threads (they keep the room's sequence).
    pub async fn read_state(&self, actor: UserId, room_id: RoomId) -> Result<ReadState> {
        let (room, member) = self.membership(actor, room_id).await?;
        self.with_counts(actor, read_state(&room, &member)).await
    }

    /// Unread counts across all the actor's rooms: the totals and each room with anything
    /// unread.
    pub async fn unread_summary(&self, actor: UserId) -> Result<UnreadSummary> {
        let mut summary = UnreadSummary::default();
        let counts: HashMap<RoomId, UnreadCounts> = self
            .store
            .unread_counts(actor, None)
            .await?
            .into_iter()
            .map(|counts| (counts.room_id, counts))
            .collect();
        for (room, member) in self.store.rooms_of_user(actor, &RoomQuery::ALL).await? {
            let unread = read_state(&room, &member).unread;
            let (mentions, threads) = counts
                .get(&room.id)
                .map_or((0, 0), |counts| (counts.mentions, counts.threads));
            if unread > 0 || threads > 0 {
                summary.total += unread;
                summary.mentions += mentions;
                summary.threads += threads;
                summary.rooms.push(RoomUnread {
                    room_id: room.id,
                    unread,
                    mentions,
                    threads,
                });
            }
        }
        Ok(summary)
    }

    /// The actor's unread messages ("unseen") others sent, deleted ones left out: room by room
    /// in room id order, each room's oldest first. Continue after `next_cursor`.
    pub async fn unread_messages(
        &self,
        actor: UserId,
        after: Option<MessageCursor>,
        limit: Option<u32>,
    ) -> Result<Page<Message, MessageCursor>> {
        let page = self.messages_across(actor, Across::Unread, after, limit);
        self.with_reactions_on(actor, page.await?).await
    }

    /// Direct messages others sent to the actor, deleted ones left out: conversation by
    /// conversation in room id order, each one's newest first. Continue after `next_cursor`.
    pub async fn messages_to_me(
        &self,
        actor: UserId,
        after: Option<MessageCursor>,
        limit: Option<u32>,
    ) -> Result<Page<Message, MessageCursor>> {
        let page = self.messages_across(actor, Across::ToMe, after, limit);
        self.with_reactions_on(actor, page.await?).await
    }

    /// Walks the actor's rooms in id order from the cursor, reading each room's messages in
    /// batches of what the page still lacks. A page costs one read of the actor's rooms and at
    /// most `limit` reads of messages; where that budget runs out, the page ends short.
    async fn messages_across(
        &self,
        actor: UserId,
        across: Across,
        after: Option<MessageCursor>,
        limit: Option<u32>,
    ) -> Result<Page<Message, MessageCursor>> {
        let limit = self.page_limit(limit)?;
        self.actor(actor).await?;
        let mut items = Vec::new();
        let mut reads = 0;
        let rooms = self.store.rooms_of_user(actor, &RoomQuery::ALL).await?;
        let from_cursor = rooms
            .into_iter()
            .skip_while(|(room, _)| after.is_some_and(|c| room.id < c.room_id));
        for (room, member) in from_cursor {
            let mut from = after.filter(|c| c.room_id == room.id).map(|c| c.seq);
            loop {
                let wanted = limit - items.len() as u32;
                let Some(range) = across.range(&room, &member, from, wanted) else {
                    break;
                };
                if wanted == 0 || reads == limit {
                    let seq = from.unwrap_or(across.start());
                    let next_cursor = Some(MessageCursor {
                        room_id: room.id,
                        seq,
                    });
                    return Ok(Page { items, next_cursor });
                }
                let batch = self.store.messages(room.id, range).await?;
                reads += 1;
                let exhausted = batch.len() < wanted as usize;
                from = match across {
                    Across::Unread => batch.last(),
                    Across::ToMe => batch.first(),
                }
                .map(|m| m.seq);
                let mut kept: Vec<Message> = batch
                    .into_iter()
                    .filter(|m| m.sender != actor && !m.is_deleted())
                    .map(|m| m.seen_by(actor))
                    .collect();
                if across == Across::ToMe {
                    kept.reverse();
                }
                items.extend(kept);
                if exhausted {
                    break;
                }
            }
        }
        Ok(Page::last(items))
    }

    /// A page size asked for, checked: the default when none, at most `max_page_size`.
    pub(super) fn page_limit(&self, limit: Option<u32>) -> Result<u32> {
        validate::limit(
            limit,
            self.config.default_page_size,
            self.config.max_page_size,
        )
    }

    /// The actor's direct conversations in room id order (oldest conversation first), each with
    /// the other person, the newest message and the unread count. Continue after `next_cursor`.
    pub async fn direct_conversations(
        &self,
        actor: UserId,
        after: Option<RoomId>,
        limit: Option<u32>,
    ) -> Result<Page<DirectConversation, RoomId>> {
        self.actor(actor).await?;
        let limit = self.page_limit(limit)?;
        let query = RoomQuery {
            after,
            ..RoomQuery::ALL
        };
        let rooms = self.store.rooms_of_user(actor, &query).await?;
        let direct = rooms
            .into_iter()
            .filter(|(room, _)| room.kind == RoomKind::Direct)
            .take(limit as usize + 1)
            .collect();
        let page = Page::cut(direct, limit, |(room, _): &(Room, Member)| room.id);
        let mut items = Vec::with_capacity(page.items.len());
        for (room, member) in page.items {
            let other = self
                .store
                .members(room.id, &MemberQuery::ALL)
                .await?
                .into_iter()
                .find(|m| m.user_id != actor);
            let other = match other {
                Some(other) => self.store.user(other.user_id).await?,
                None => None,
            };
            let newest = self.page(room.id, HistoryQuery::newest(1), actor).await?;
            items.push(DirectConversation {
                unread: read_state(&room, &member).unread,
                other: other.map(|user| user.directory_entry()),
                last_message: newest.items.into_iter().next(),
                room,
            });
        }
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }
}

/// Which messages of each room a cross-room list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Across {
    /// Those after the member's read marker, oldest first.
    Unread,
    /// Those of direct conversations, newest first.
    ToMe,
}

impl Across {
    /// Where a room's walk starts: the first unread message, or the newest one.
    fn start(self) -> u64 {
        match self {
            Self::Unread => 0,
            Self::ToMe => u64::MAX,
        }
    }

    /// The batch to read in `room`, continuing from `from` when the cursor ended in it; `None`
    /// when the room has nothing to show.
    fn range(
        self,
        room: &Room,
        member: &Member,
        from: Option<u64>,
        limit: u32,
    ) -> Option<SeqRange> {
        match self {
            Self::Unread => {
                let after = from.unwrap_or(self.start()).max(member.last_read_seq);
                (after < room.last_seq).then_some(SeqRange {
                    before: None,
                    after: Some(after),
                    limit,
                })
            }
            Self::ToMe => {
                let before = from.unwrap_or(self.start());
                (room.kind == RoomKind::Direct && room.last_seq > 0 && before > 1).then_some(
                    SeqRange {
                        before: Some(before),
                        after: None,
                        limit,
                    },
                )
            }
        }
    }
}
