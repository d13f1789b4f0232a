//! Message search: a token index of its own, the tree `postings`. A key is `term ‖ 0 ‖ room ‖
//! bucket`, where the bucket is the message's sequence number divided by [`BUCKET`]; its value
//! lists the live messages of that room and bucket that hold the term, as `seq ‖ id` entries
//! (24 bytes each, in sequence order). Every term of every live message is listed
//! (chat_core::search::terms, the same for every store). A query reads the lists of its longest
//! term's completions, keeps those of the searcher's rooms, and checks the messages newest
//! first until the page is full.
//!
//! Why lists and not a key per term and message: a send wrote one key per term (six for a short
//! message), which halved the send rate. Messages sent together to one room share buckets, so
//! a batch of sends (one group commit) rewrites one list per term and bucket; a message's keys
//! are still computed from the message alone, so edits and deletes touch exactly its lists.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};

use chat_core::search::{matches, terms};
use chat_core::store::SearchQuery;
use chat_core::{Message, MessageId, RoomId};

use crate::SledStore;
use crate::codec::{StoreResult, backend, counter_key, decode, pair, read, second, uuid};
use crate::tx::{Kind, Trees, Tx};

/// Sequence numbers per list: consecutive messages of a room share a list.
const BUCKET: u64 = 64;

/// One entry: sequence number (8 bytes) and message id (16).
const ENTRY: usize = 24;

/// The lists a batch of writes changed, by key: read once, changed in memory, written back
/// once at the batch's end ([`tx_write_postings`]).
pub(crate) type Postings = RefCell<HashMap<Vec<u8>, BTreeMap<u64, [u8; 16]>>>;

fn list_key(term: &str, room: RoomId, seq: u64) -> Vec<u8> {
    [
        term.as_bytes(),
        &[0],
        &counter_key(room.0, seq / BUCKET)[..],
    ]
    .concat()
}

fn decode_list(bytes: &[u8]) -> StoreResult<BTreeMap<u64, [u8; 16]>> {
    if !bytes.len().is_multiple_of(ENTRY) {
        return Err(backend("unreadable posting list"));
    }
    Ok(bytes
        .chunks_exact(ENTRY)
        .map(|entry| {
            let (seq, id) = entry.split_at(8);
            let seq = u64::from_be_bytes(seq.try_into().unwrap_or_default());
            (seq, id.try_into().unwrap_or_default())
        })
        .collect())
}

fn encode_list(list: &BTreeMap<u64, [u8; 16]>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(list.len() * ENTRY);
    for (seq, id) in list {
        bytes.extend_from_slice(&seq.to_be_bytes());
        bytes.extend_from_slice(id);
    }
    bytes
}

/// Changes the list of each of `body`'s terms that holds `message`'s place.
fn tx_edit_lists(
    tx: &Tx<'_>,
    message: &Message,
    body: &str,
    edit: impl Fn(&mut BTreeMap<u64, [u8; 16]>),
) -> StoreResult<()> {
    let mut lists = tx.postings.borrow_mut();
    for term in terms(body) {
        let key = list_key(&term, message.room_id, message.seq);
        let list = match lists.entry(key) {
            std::collections::hash_map::Entry::Occupied(list) => list.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let stored = tx.get(Kind::Postings, slot.key())?;
                slot.insert(match stored {
                    Some(bytes) => decode_list(&bytes)?,
                    None => BTreeMap::new(),
                })
            }
        };
        edit(list);
    }
    Ok(())
}

/// Adds a live message's terms to the index.
pub(crate) fn tx_index(tx: &Tx<'_>, message: &Message) -> StoreResult<()> {
    let id = *message.id.0.as_bytes();
    tx_edit_lists(tx, message, &message.body, |list| {
        list.insert(message.seq, id);
    })
}

/// Takes a message's terms (as of `body`) out of the index.
pub(crate) fn tx_unindex(tx: &Tx<'_>, message: &Message, body: &str) -> StoreResult<()> {
    tx_edit_lists(tx, message, body, |list| {
        list.remove(&message.seq);
    })
}

/// Writes back the lists the batch changed: the last step of every batch.
pub(crate) fn tx_write_postings(tx: &Tx<'_>) -> StoreResult<()> {
    for (key, list) in tx.postings.borrow_mut().drain() {
        if list.is_empty() {
            tx.remove(Kind::Postings, key)?;
        } else {
            tx.insert(Kind::Postings, key, encode_list(&list))?;
        }
    }
    Ok(())
}

/// The key that says every message is indexed: no term is empty, so no other key starts with
/// 0.
const INDEXED: &[u8] = &[0];

/// Indexes the live messages of a directory written before the index (or this form of it)
/// existed, once, room by room in sequence order, so that a list is written when its bucket is
/// done (a crash midway indexes again from the start: the same lists).
pub(crate) fn index_old_messages(db: &sled::Db, trees: &Trees) -> StoreResult<()> {
    // The index's first form, a key per term and message.
    db.drop_tree("search").map_err(backend)?;
    let index = trees.tree(Kind::Postings);
    if index.contains_key(INDEXED).map_err(backend)? {
        return Ok(());
    }
    let mut bucket: Option<(RoomId, u64)> = None;
    let mut lists: HashMap<Vec<u8>, BTreeMap<u64, [u8; 16]>> = HashMap::new();
    let write = |lists: &mut HashMap<Vec<u8>, BTreeMap<u64, [u8; 16]>>| {
        lists
            .drain()
            .try_for_each(|(key, list)| index.insert(key, encode_list(&list)).map(drop))
            .map_err(backend)
    };
    for value in trees.tree(Kind::Messages).iter().values() {
        let message: Message = decode(&value.map_err(backend)?)?;
        let this = (message.room_id, message.seq / BUCKET);
        if bucket != Some(this) {
            write(&mut lists)?;
            bucket = Some(this);
        }
        if message.is_deleted() {
            continue;
        }
        for term in terms(&message.body) {
            let key = list_key(&term, message.room_id, message.seq);
            let list = lists.entry(key).or_default();
            list.insert(message.seq, *message.id.0.as_bytes());
        }
    }
    write(&mut lists)?;
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
            .tree(Kind::Postings)
            .scan_prefix(longest.as_bytes())
        {
            let (key, list) = entry.map_err(backend)?;
            let at = key
                .len()
                .checked_sub(24)
                .ok_or_else(|| backend("short search key"))?;
            let room = RoomId(uuid(&key[at..at + 16])?);
            if !rooms.contains(&room) {
                continue;
            }
            for (seq, id) in decode_list(&list)? {
                let id = MessageId(uuid::Uuid::from_bytes(id));
                if query.before.is_none_or(|before| id < before) {
                    candidates.push((id, room, seq));
                }
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
