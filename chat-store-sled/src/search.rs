//! Message search: a token index of its own, the tree `search`: `term ‖ 0 ‖ room ‖ seq` → the
//! message's id, for every term of every live message (chat_core::search::terms, the same for
//! every store). A query reads the keys of its longest term's completions, keeps those of the
//! searcher's rooms, and checks the messages newest first until the page is full.

use std::collections::HashSet;

use chat_core::search::{matches, terms};
use chat_core::store::SearchQuery;
use chat_core::{Message, MessageId, RoomId};

use crate::SledStore;
use crate::codec::{StoreResult, backend, counter, counter_key, decode, pair, read, second, uuid};
use crate::tx::{Kind, Trees, Tx};

fn search_key(term: &str, room: RoomId, seq: u64) -> Vec<u8> {
    [term.as_bytes(), &[0], &counter_key(room.0, seq)[..]].concat()
}

/// Adds a live message's terms to the index.
pub(crate) fn tx_index(tx: &Tx<'_>, message: &Message) -> StoreResult<()> {
    for term in terms(&message.body) {
        let key = search_key(&term, message.room_id, message.seq);
        tx.insert(Kind::Search, key, message.id.0.as_bytes())?;
    }
    Ok(())
}

/// Takes a message's terms (as of `body`) out of the index.
pub(crate) fn tx_unindex(tx: &Tx<'_>, message: &Message, body: &str) -> StoreResult<()> {
    for term in terms(body) {
        tx.remove(
            Kind::Search,
            search_key(&term, message.room_id, message.seq),
        )?;
    }
    Ok(())
}

/// The key that says every message is indexed: no term is empty, so no other key starts with
/// 0.
const INDEXED: &[u8] = &[0];

/// Indexes the live messages of a directory written before the index existed, once (a crash
/// midway indexes again from the start: the same keys).
pub(crate) fn index_old_messages(trees: &Trees) -> StoreResult<()> {
    let index = trees.tree(Kind::Search);
    if index.contains_key(INDEXED).map_err(backend)? {
        return Ok(());
    }
    for value in trees.tree(Kind::Messages).iter().values() {
        let message: Message = decode(&value.map_err(backend)?)?;
        if message.is_deleted() {
            continue;
        }
        for term in terms(&message.body) {
            let key = search_key(&term, message.room_id, message.seq);
            index
                .insert(key, message.id.0.as_bytes())
                .map_err(backend)?;
        }
    }
    index.insert(INDEXED, &[]).map_err(backend)?;
    index.flush().map_err(backend).map(drop)
}

impl SledStore {
    pub(crate) fn search_messages(&self, query: &SearchQuery) -> StoreResult<Vec<Message>> {
        let rooms: HashSet<RoomId> = match query.room {
            Some(room) => {
                let member = self
                    .trees
                    .get(Kind::MembersByUser, pair(query.user.0, room.0.as_bytes()))?;
                member.map(|_| room).into_iter().collect()
            }
            None => self
                .trees
                .tree(Kind::MembersByUser)
                .scan_prefix(query.user.0.as_bytes())
                .keys()
                .map(|key| Ok(RoomId(second(&key.map_err(backend)?)?)))
                .collect::<StoreResult<_>>()?,
        };
        let Some(longest) = query.terms.iter().max_by_key(|term| term.len()) else {
            return Ok(Vec::new());
        };
        let mut candidates: Vec<(MessageId, RoomId, u64)> = Vec::new();
        for entry in self
            .trees
            .tree(Kind::Search)
            .scan_prefix(longest.as_bytes())
        {
            let (key, id) = entry.map_err(backend)?;
            let at = key
                .len()
                .checked_sub(24)
                .ok_or_else(|| backend("short search key"))?;
            let room = RoomId(uuid(&key[at..at + 16])?);
            if !rooms.contains(&room) {
                continue;
            }
            let id = MessageId(uuid(&id)?);
            if query.before.is_none_or(|before| id < before) {
                candidates.push((id, room, counter(&key)?));
            }
        }
        // A message whose several terms begin with the longest one is listed once per term.
        candidates.sort_unstable_by_key(|(id, ..)| std::cmp::Reverse(*id));
        candidates.dedup_by_key(|(id, ..)| *id);
        let mut found = Vec::new();
        for (_, room, seq) in candidates {
            if found.len() == query.limit as usize {
                break;
            }
            let message: Option<Message> =
                read(&self.trees, Kind::Messages, counter_key(room.0, seq))?;
            if let Some(message) = message
                && !message.is_deleted()
                && matches(&terms(&message.body), &query.terms)
            {
                found.push(message);
            }
        }
        Ok(found)
    }
}
