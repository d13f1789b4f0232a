//! Reactions. Two trees:
//!
//! - `reactions`: `room ‖ seq ‖ user ‖ key` → nothing: who reacted with what.
//! - `reaction_counts`: `room ‖ seq ‖ key` → how many reacted with that key (u32), and
//!   `room ‖ seq` alone → how many different keys the message has (u32), so that every check of
//!   an add is a point read inside the write, and a page's reactions one range read.

use std::ops::{Bound, RangeInclusive};

use async_trait::async_trait;
use chat_core::store::ReactionStore;
use chat_core::{Conflict, Entity, Message, MessageId, Reaction, RoomId, StoreError, UserId};
use sled::IVec;

use crate::SledStore;
use crate::codec::{StoreResult, backend, counter_key, tx_read};
use crate::messages::{change_message, location};
use crate::rooms::tx_member;
use crate::tx::{Kind, Trees, Tx};

fn reaction_key(message: [u8; 24], user: UserId, key: &str) -> Vec<u8> {
    [&message[..], user.0.as_bytes(), key.as_bytes()].concat()
}

/// The key range of everything kept under `room ‖ seq` for the room's messages numbered
/// in `seqs`.
pub(crate) fn messages_between(
    room: RoomId,
    seqs: &RangeInclusive<u64>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let (&first, &last) = (seqs.start(), seqs.end());
    let upper = match last.checked_add(1) {
        Some(next) => Bound::Excluded(counter_key(room.0, next).to_vec()),
        None => Bound::Included([room.0.as_bytes(), &[0xFF; 9][..]].concat()),
    };
    (Bound::Included(counter_key(room.0, first).to_vec()), upper)
}

fn count_key(message: [u8; 24], key: &str) -> Vec<u8> {
    [&message[..], key.as_bytes()].concat()
}

fn read_count(value: Option<IVec>) -> StoreResult<u32> {
    value.map_or(Ok(0), |bytes| {
        let bytes: [u8; 4] = bytes
            .as_ref()
            .try_into()
            .map_err(|_| backend("unreadable reaction count"))?;
        Ok(u32::from_be_bytes(bytes))
    })
}

/// Sets a count, removing it at zero.
fn put_count(tx: &Tx<'_>, key: &[u8], count: u32) -> StoreResult<()> {
    if count == 0 {
        tx.remove(Kind::ReactionCounts, key).map(drop)
    } else {
        tx.insert(Kind::ReactionCounts, key, &count.to_be_bytes())
    }
}

/// The contract's checks of a reaction change: the message is live and `user` a member of its
/// room. Returns the message's `room ‖ seq` key.
fn tx_target(tx: &Tx<'_>, id: MessageId, user: UserId) -> StoreResult<[u8; 24]> {
    let at = tx
        .get(Kind::MessageIds, id.0.as_bytes())?
        .ok_or(StoreError::NotFound(Entity::Message))?;
    let live = tx_read::<Message>(tx, Kind::Messages, &at)?.is_some_and(|m| !m.is_deleted());
    if !live {
        return Err(StoreError::NotFound(Entity::Message));
    }
    let (room, seq) = location(&at)?;
    if tx_member(tx, room, user)?.is_none() {
        return Err(StoreError::NotFound(Entity::Member));
    }
    Ok(counter_key(room.0, seq))
}

/// Adds `user`'s reaction `key` to the message at `message` (`room ‖ seq`) and counts it;
/// returns whether it was new. With `max_keys`, a new key beyond that many is refused.
pub(crate) fn tx_put_reaction(
    tx: &Tx<'_>,
    message: [u8; 24],
    user: UserId,
    key: &str,
    max_keys: Option<u32>,
) -> StoreResult<bool> {
    let mine = reaction_key(message, user, key);
    if tx.get(Kind::Reactions, &mine)?.is_some() {
        return Ok(false);
    }
    let counted = count_key(message, key);
    let count = read_count(tx.get(Kind::ReactionCounts, &counted)?)?;
    if count == 0 {
        let keys = read_count(tx.get(Kind::ReactionCounts, message)?)?;
        if max_keys.is_some_and(|max| keys >= max) {
            return Err(StoreError::Conflict(Conflict::TooManyReactions));
        }
        put_count(tx, &message, keys + 1)?;
    }
    put_count(tx, &counted, count + 1)?;
    tx.insert(Kind::Reactions, mine, &[])?;
    Ok(true)
}

/// The keys of both trees under `prefix` (a room, or a room and sequence number), to remove
/// with what holds them.
pub(crate) fn reaction_keys(trees: &Trees, prefix: &[u8]) -> StoreResult<Vec<(Kind, IVec)>> {
    let mut keys = Vec::new();
    for kind in [Kind::Reactions, Kind::ReactionCounts] {
        for key in trees.tree(kind).scan_prefix(prefix).keys() {
            keys.push((kind, key.map_err(backend)?));
        }
    }
    Ok(keys)
}

#[async_trait]
impl ReactionStore for SledStore {
    async fn add_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
        max_keys: u32,
    ) -> StoreResult<Option<Message>> {
        let key = key.to_owned();
        self.write(move |tx| {
            let message = tx_target(tx, id, user)?;
            if !tx_put_reaction(tx, message, user, &key, Some(max_keys))? {
                return Ok(None);
            }
            change_message(tx, id, |_| {}).map(Some)
        })
        .await
    }

    async fn remove_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
    ) -> StoreResult<Option<Message>> {
        let key = key.to_owned();
        self.write(move |tx| {
            let message = tx_target(tx, id, user)?;
            let mine = reaction_key(message, user, &key);
            if tx.get(Kind::Reactions, &mine)?.is_none() {
                return Ok(None);
            }
            let counted = count_key(message, &key);
            let count = read_count(tx.get(Kind::ReactionCounts, &counted)?)?;
            if count <= 1 {
                let keys = read_count(tx.get(Kind::ReactionCounts, message)?)?;
                put_count(tx, &message, keys.saturating_sub(1))?;
            }
            put_count(tx, &counted, count.saturating_sub(1))?;
            tx.remove(Kind::Reactions, mine)?;
            change_message(tx, id, |_| {}).map(Some)
        })
        .await
    }

    async fn reactions(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
        viewer: UserId,
    ) -> StoreResult<Vec<(u64, Reaction)>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let (lower, upper) = messages_between(room, &seqs);
        let mut reactions = Vec::new();
        let counts = self.trees.tree(Kind::ReactionCounts);
        for entry in counts.range::<Vec<u8>, _>((lower, upper)) {
            let (at, count) = entry.map_err(backend)?;
            // `room ‖ seq` alone counts the message's keys.
            let Some(key) = at.get(24..).filter(|key| !key.is_empty()) else {
                continue;
            };
            let key = std::str::from_utf8(key).map_err(backend)?.to_owned();
            let message: [u8; 24] = at[..24].try_into().map_err(backend)?;
            let seq = u64::from_be_bytes(message[16..].try_into().map_err(backend)?);
            let me = self
                .trees
                .get(Kind::Reactions, reaction_key(message, viewer, &key))?
                .is_some();
            let count = read_count(Some(count))?;
            reactions.push((seq, Reaction { key, count, me }));
        }
        Ok(reactions)
    }

    async fn reactors(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<(u64, String, UserId)>> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let (lower, upper) = messages_between(room, &seqs);
        let mut reactors = Vec::new();
        let reactions = self.trees.tree(Kind::Reactions);
        // `room ‖ seq ‖ user ‖ key`: ordered by user before key here, so sorted after.
        for at in reactions.range::<Vec<u8>, _>((lower, upper)).keys() {
            let at = at.map_err(backend)?;
            let (seq, rest) = at
                .get(16..)
                .unwrap_or_default()
                .split_at_checked(8)
                .ok_or_else(|| backend("unreadable reaction key"))?;
            let (user, key) = rest
                .split_at_checked(16)
                .ok_or_else(|| backend("unreadable reaction key"))?;
            let seq = u64::from_be_bytes(seq.try_into().map_err(backend)?);
            let user = UserId(uuid::Uuid::from_slice(user).map_err(backend)?);
            let key = std::str::from_utf8(key).map_err(backend)?.to_owned();
            reactors.push((seq, key, user));
        }
        reactors.sort();
        Ok(reactors)
    }
}
