//! Searching the messages of one's rooms.

use super::Chat;
use crate::error::{Error, Field, Result};
use crate::ids::{MessageId, RoomId, UserId};
use crate::message::Message;
use crate::page::Page;
use crate::search::{MAX_QUERY_BYTES, MAX_QUERY_TERMS, terms};
use crate::store::SearchQuery;

impl Chat {
    /// Messages of the actor's rooms (only `room`, when given) that match `text`, newest first:
    /// each word of the text begins a word of the message, case and accents aside; text
    /// without spaces (Chinese, Japanese) matches by pairs of characters (see
    /// [`search`](crate::search)). Deleted messages never match; an edited one matches its
    /// new text. Continue with `next_cursor` as `before`.
    ///
    /// Errors: `Invalid(Search)` for text with no word, or longer than 256 bytes or 16 words;
    /// `Forbidden` for a room the actor is not a member of.
    pub async fn search(
        &self,
        actor: UserId,
        text: &str,
        room: Option<RoomId>,
        before: Option<MessageId>,
        limit: Option<u32>,
    ) -> Result<Page<Message, MessageId>> {
        let limit = self.page_limit(limit)?;
        if text.len() > MAX_QUERY_BYTES {
            return Err(Error::invalid(Field::Search, "is longer than 256 bytes"));
        }
        let terms = terms(text);
        if terms.is_empty() || terms.len() > MAX_QUERY_TERMS {
            return Err(Error::invalid(Field::Search, "needs 1 to 16 words"));
        }
        match room {
            Some(room) => drop(self.membership(actor, room).await?),
            None => drop(self.actor(actor).await?),
        }
        let query = SearchQuery {
            user: actor,
            room,
            terms,
            before,
            limit: limit + 1,
        };
        let found = self.store.search(&query).await?;
        let page = Page::cut(found, limit, |m| m.id).map(|m| m.seen_by(actor));
        self.with_reactions_on(actor, page).await
    }
}
