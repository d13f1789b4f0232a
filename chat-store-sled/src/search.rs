//! Message search: a token index of its own, the tree `postings`. A key is `term ‖ 0 ‖ room ‖
//! bucket`, where the bucket is the message's sequence number divided by [`BUCKET`]; its value
//! lists the live messages of that room and bucket that hold the term, as `place ‖ id` entries
//! (17 bytes each, in sequence order; the place is the sequence number's remainder, which with
//! the bucket gives it back). Every term of every live message is listed
//! (chat_core::search::terms, the same for every store). A query reads the lists of its longest
//! term's completions, keeps those of the searcher's rooms, and checks the messages newest
//! first until the page is full.
//!
//! Why lists and not a key per term and message: a send wrote one key per term (six for a short
//! message), which halved the send rate. Messages sent together to one room share buckets, so
//! a batch of sends (one group commit) rewrites one list per term and bucket; a message's keys
//! are still computed from the message alone, so edits and deletes touch exactly its lists.
//! Lists stay encoded while a batch changes them (entries have one size and are sorted, so an
//! entry is found by bisection, and a send appends to the end).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use chat_core::search::{matches, terms};
use chat_core::store::SearchQuery;
use chat_core::{Message, MessageId, RoomId};

use crate::SledStore;
use crate::codec::{StoreResult, backend, counter_key, decode, pair, read, second, uuid};
use crate::tx::{Kind, Trees, Tx};

/// Sequence numbers per list: consecutive messages of a room share a list. At most 256, so a
/// place fits a byte.
const BUCKET: u64 = 64;

/// One entry: the place in the bucket (1 byte) and the message id (16).
const ENTRY: usize = 17;

/// The lists a batch of writes changed, encoded, by key: read once, changed in memory, written
/// back once at the batch's end ([`tx_write_postings`]).
pub(crate) type Postings = RefCell<HashMap<Vec<u8>, Vec<u8>>>;

fn list_key(term: &str, room: RoomId, seq: u64) -> Vec<u8> {
    [
        term.as_bytes(),
        &[0],
        &counter_key(room.0, seq / BUCKET)[..],
    ]
    .concat()
}

/// A list's entry for `message`.
fn entry(message: &Message) -> [u8; ENTRY] {
    let mut entry = [0; ENTRY];
    // Below BUCKET, so it fits.
    entry[0] = (message.seq % BUCKET) as u8;
    entry[1..].copy_from_slice(message.id.0.as_bytes());
    entry
}

/// Where the entry at `place` is in `list` (`Ok`), or would go (`Err`), counted in entries.
fn find(list: &[u8], place: u8) -> Result<usize, usize> {
    let (entries, _) = list.as_chunks::<ENTRY>();
    // A send's entry comes after every other: no search.
    match entries.last() {
        Some(last) if last[0] < place => Err(entries.len()),
        _ => entries.binary_search_by_key(&place, |entry| entry[0]),
    }
}

/// The `(seq, id)` entries of the list stored under `key`.
fn decode_list(key: &[u8], list: &[u8]) -> StoreResult<Vec<(u64, MessageId)>> {
    let bucket = key
        .len()
        .checked_sub(8)
        .and_then(|at| key[at..].try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| backend("short search key"))?;
    if !list.len().is_multiple_of(ENTRY) {
        return Err(backend("unreadable posting list"));
    }
    list.chunks_exact(ENTRY)
        .map(|entry| {
            let id = MessageId(uuid(&entry[1..])?);
            Ok((bucket * BUCKET + u64::from(entry[0]), id))
        })
        .collect()
}

/// Changes the list of each of `terms` that holds `message`'s place.
fn tx_edit_lists(
    tx: &Tx<'_>,
    message: &Message,
    terms: &[String],
    edit: impl Fn(&mut Vec<u8>),
) -> StoreResult<()> {
    let mut lists = tx.postings.borrow_mut();
    for term in terms {
        let key = list_key(term, message.room_id, message.seq);
        let list = match lists.entry(key) {
            std::collections::hash_map::Entry::Occupied(list) => list.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let stored = tx.get(Kind::Postings, slot.key())?;
                slot.insert(stored.map(|bytes| bytes.to_vec()).unwrap_or_default())
            }
        };
        edit(list);
    }
    Ok(())
}

/// Adds a live message to the lists of its `terms` (those of its body).
pub(crate) fn tx_index(tx: &Tx<'_>, message: &Message, terms: &[String]) -> StoreResult<()> {
    let entry = entry(message);
    tx_edit_lists(tx, message, terms, |list| match find(list, entry[0]) {
        Ok(at) => list[at * ENTRY..(at + 1) * ENTRY].copy_from_slice(&entry),
        Err(at) => {
            list.splice(at * ENTRY..at * ENTRY, entry);
        }
    })
}

/// Takes a message's terms (as of `body`) out of the index.
pub(crate) fn tx_unindex(tx: &Tx<'_>, message: &Message, body: &str) -> StoreResult<()> {
    let place = entry(message)[0];
    tx_edit_lists(tx, message, &terms(body), |list| {
        if let Ok(at) = find(list, place) {
            list.drain(at * ENTRY..(at + 1) * ENTRY);
        }
    })
}

/// Writes back the lists the batch changed: the last step of every batch.
pub(crate) fn tx_write_postings(tx: &Tx<'_>) -> StoreResult<()> {
    for (key, list) in tx.postings.borrow_mut().drain() {
        if list.is_empty() {
            tx.remove(Kind::Postings, key)?;
        } else {
            tx.insert(Kind::Postings, key, list)?;
        }
    }
    Ok(())
}

/// The key that says every message is indexed, and in which form (its value): no term is
/// empty, so no other key starts with 0.
const INDEXED: &[u8] = &[0];

/// The form of the lists this code writes. The form before had 24-byte entries (`seq ‖ id`)
/// and an empty marker; the first form was a tree `search` with a key per term and message.
const FORM: &[u8] = b"place,id";

/// Indexes the live messages of a directory written before the index (or this form of it)
/// existed, once, room by room in sequence order, so that a list is written when its bucket is
/// done (a crash midway indexes again from the start: the same lists).
pub(crate) fn index_old_messages(db: &sled::Db, trees: &Trees) -> StoreResult<()> {
    db.drop_tree("search").map_err(backend)?;
    let index = trees.tree(Kind::Postings);
    if index.get(INDEXED).map_err(backend)?.as_deref() == Some(FORM) {
        return Ok(());
    }
    index.clear().map_err(backend)?;
    let mut bucket: Option<(RoomId, u64)> = None;
    let mut lists: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
    let write = |lists: &mut HashMap<Vec<u8>, Vec<u8>>| {
        lists
            .drain()
            .try_for_each(|(key, list)| index.insert(key, list).map(drop))
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
        // Messages come in sequence order: each entry goes at the end.
        for term in terms(&message.body) {
            let key = list_key(&term, message.room_id, message.seq);
            lists.entry(key).or_default().extend(entry(&message));
        }
    }
    write(&mut lists)?;
    index.insert(INDEXED, FORM).map_err(backend)?;
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
            for (seq, id) in decode_list(&key, &list)? {
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
