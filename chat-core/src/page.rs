//! One shape for every list the engine returns: a page of items and where the next one starts.

use crate::error::Field;
use serde::{Deserialize, Serialize};

use crate::ids::RoomId;

/// A page of a list and the cursor of the next page.
///
/// Every list of [`Chat`](crate::Chat) is paged this way, and every page costs a bounded number
/// of store reads. The cursor's type says what it holds: a sequence number for history and the
/// change feed, a username for the directory, a room id for rooms, a
/// [`MemberCursor`](crate::MemberCursor) for members, a [`MessageCursor`] across rooms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T, C = u64> {
    /// The items, in the list's order.
    pub items: Vec<T>,
    /// What to pass for the next page; `None` when this page ends the list.
    pub next_cursor: Option<C>,
}

impl<T, C> Page<T, C> {
    /// A page that ends the list.
    pub fn last(items: Vec<T>) -> Self {
        Self {
            items,
            next_cursor: None,
        }
    }

    /// From `items` read with one more than `limit`: keeps the first `limit`, and when there
    /// was one more, continues after the last kept one.
    pub(crate) fn cut(mut items: Vec<T>, limit: u32, cursor: impl FnOnce(&T) -> C) -> Self {
        let next_cursor = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(cursor)
        } else {
            None
        };
        Self { items, next_cursor }
    }

    /// Whether a next page follows.
    pub fn has_more(&self) -> bool {
        self.next_cursor.is_some()
    }

    /// The same page with each item converted.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U, C> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Where a page of messages from several rooms ends: rooms are walked in id order, and each
/// room's messages by sequence number. Written as `ROOM.SEQ`; clients pass it back as they got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageCursor {
    /// The room the page ended in.
    pub room_id: RoomId,
    /// The sequence number the next page continues from in that room.
    pub seq: u64,
}

impl std::fmt::Display for MessageCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.room_id, self.seq)
    }
}

impl std::str::FromStr for MessageCursor {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || crate::Error::invalid(Field::Cursor, "not a message cursor");
        let (room, seq) = s.split_once('.').ok_or_else(invalid)?;
        Ok(Self {
            room_id: room.parse().map_err(|_| invalid())?,
            seq: seq.parse().map_err(|_| invalid())?,
        })
    }
}
