//! Read markers, unread counts and the "what's new for me" views.

use super::Chat;
use crate::error::{Error, Result};
use crate::events::Event;
use crate::ids::{RoomId, UserId};
use crate::message::{DirectConversation, Message, Page, ReadState, RoomUnread, UnreadSummary};
use crate::room::{Member, Room, RoomKind};
use crate::store::{MemberQuery, RoomQuery, SeqRange};
use crate::validate;

fn read_state(room: &Room, member: &Member) -> ReadState {
    ReadState {
        room_id: room.id,
        last_read_seq: member.last_read_seq,
        last_seq: room.last_seq,
        unread: room.last_seq.saturating_sub(member.last_read_seq),
    }
}

impl Chat {
    /// Marks the room read up to `seq` (the marker never moves back) and returns the read state.
    ///
    /// Errors: `Forbidden` (not a member); `Invalid(seq)` beyond the newest message.
    pub async fn mark_read(&self, actor: UserId, room_id: RoomId, seq: u64) -> Result<ReadState> {
        let (room, member) = self.membership(actor, room_id).await?;
        if seq > room.last_seq {
            return Err(Error::invalid("seq", "is beyond the room's newest message"));
        }
        let marker = self.store.advance_read_marker(room_id, actor, seq).await?;
        if marker != member.last_read_seq {
            self.publish(Event::ReadUpdated {
                room_id,
                user_id: actor,
                last_read_seq: marker,
            });
        }
        let room = self.room_by_id(room_id).await?;
        Ok(ReadState {
            room_id,
            last_read_seq: marker,
            last_seq: room.last_seq,
            unread: room.last_seq.saturating_sub(marker),
        })
    }

    /// The actor's read state in a room: marker, newest sequence number and unread count.
    ///
    /// The count is `last_seq - last_read_seq`: no history is scanned. The actor's own messages
    /// never count (sending moves the sender's marker); deleted messages after the marker do.
    pub async fn read_state(&self, actor: UserId, room_id: RoomId) -> Result<ReadState> {
        let (room, member) = self.membership(actor, room_id).await?;
        Ok(read_state(&room, &member))
    }

    /// Unread counts across all the actor's rooms: the total and each room with unread messages.
    pub async fn unread_summary(&self, actor: UserId) -> Result<UnreadSummary> {
        let mut summary = UnreadSummary::default();
        for (room, member) in self.store.rooms_of_user(actor, &RoomQuery::ALL).await? {
            let unread = read_state(&room, &member).unread;
            if unread > 0 {
                summary.total += unread;
                summary.rooms.push(RoomUnread {
                    room_id: room.id,
                    unread,
                });
            }
        }
        Ok(summary)
    }

    /// The actor's unread messages across all rooms ("unseen"), oldest first, at most `limit`;
    /// deleted messages left out.
    pub async fn unread_messages(&self, actor: UserId, limit: Option<u32>) -> Result<Vec<Message>> {
        let limit = self.page_limit(limit)?;
        let mut unread = Vec::new();
        for (room, member) in self.store.rooms_of_user(actor, &RoomQuery::ALL).await? {
            if room.last_seq > member.last_read_seq {
                let range = SeqRange {
                    before: None,
                    after: Some(member.last_read_seq),
                    limit,
                };
                unread.extend(self.store.messages(room.id, range).await?);
            }
        }
        Ok(Self::newest_by_others(unread, actor, limit, false))
    }

    /// Direct messages others sent to the actor, newest first, at most `limit`; deleted
    /// messages left out.
    pub async fn messages_to_me(&self, actor: UserId, limit: Option<u32>) -> Result<Vec<Message>> {
        let limit = self.page_limit(limit)?;
        let mut received = Vec::new();
        for (room, _) in self.store.rooms_of_user(actor, &RoomQuery::ALL).await? {
            if room.kind == RoomKind::Direct {
                let range = SeqRange {
                    before: None,
                    after: None,
                    limit,
                };
                received.extend(self.store.messages(room.id, range).await?);
            }
        }
        Ok(Self::newest_by_others(received, actor, limit, true))
    }

    /// A page size asked for, checked: the default when none, at most `max_page_size`.
    pub(super) fn page_limit(&self, limit: Option<u32>) -> Result<u32> {
        validate::limit(
            limit,
            self.config.default_page_size,
            self.config.max_page_size,
        )
    }

    /// Live messages not sent by `actor`, in time order (newest first when asked), cut to
    /// `limit`.
    fn newest_by_others(
        mut messages: Vec<Message>,
        actor: UserId,
        limit: u32,
        newest_first: bool,
    ) -> Vec<Message> {
        messages.retain(|m| m.sender != actor && !m.is_deleted());
        let mut messages: Vec<Message> = messages.into_iter().map(|m| m.seen_by(actor)).collect();
        messages.sort_by_key(|m| (m.created_at, m.room_id, m.seq));
        if newest_first {
            messages.reverse();
        }
        messages.truncate(limit as usize);
        messages
    }

    /// The actor's direct conversations, each with the other person, the newest message and
    /// the unread count; most recently active first.
    pub async fn direct_conversations(&self, actor: UserId) -> Result<Vec<DirectConversation>> {
        self.actor(actor).await?;
        let mut conversations = Vec::new();
        for (room, member) in self.store.rooms_of_user(actor, &RoomQuery::ALL).await? {
            if room.kind != RoomKind::Direct {
                continue;
            }
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
            let newest = self.page(room.id, Page::newest(1), actor).await?;
            let last_message = newest.items.into_iter().next();
            conversations.push(DirectConversation {
                unread: read_state(&room, &member).unread,
                other: other.map(|user| user.directory_entry()),
                last_message,
                room,
            });
        }
        conversations.sort_by_key(|c| {
            std::cmp::Reverse(
                c.last_message
                    .as_ref()
                    .map_or(c.room.created_at, |m| m.created_at),
            )
        });
        Ok(conversations)
    }
}
