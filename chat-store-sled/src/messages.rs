//! Messages: appends with sequence allocation, edits, tombstones, pages and changes.

use std::ops::{Bound, RangeInclusive};

use async_trait::async_trait;
use chat_core::search::terms;
use chat_core::store::{
    Mention, MessageStore, NewStoredMessage, RoomCounters, SearchQuery, SeenCounters, SeqRange,
};
use chat_core::{Entity, Member, Message, MessageId, RoomId, Sent, StoreError, UserId};
use chrono::{DateTime, Utc};

use crate::SledStore;
use crate::codec::{
    StoreResult, backend, counter, counter_key, decode, pair, read, tx_read, tx_write, uuid,
};
use crate::reactions::reaction_keys;
use crate::rooms::{member_key, members_of, tx_member, tx_put_room, tx_room};
use crate::search::{tx_index, tx_unindex};
use crate::threads::{
    mention_and_thread_keys, tx_count_reply, tx_mention, tx_put_mention, tx_thread_root,
    unread_mention_keys,
};
use crate::tx::{Kind, Tx};

/// Where a message lives: its room and sequence number (a `counter_key`).
pub(crate) fn location(bytes: &[u8]) -> StoreResult<(RoomId, u64)> {
    Ok((
        RoomId(uuid(bytes.get(..16).unwrap_or_default())?),
        counter(bytes)?,
    ))
}

/// The message a sender already sent with this transaction id.
fn tx_original(tx: &Tx<'_>, new: &NewStoredMessage) -> StoreResult<Option<Message>> {
    let Some(txn_id) = &new.txn_id else {
        return Ok(None);
    };
    let Some(id) = tx.get(Kind::TxnIds, pair(new.sender.0, txn_id.as_bytes()))? else {
        return Ok(None);
    };
    let Some(at) = tx.get(Kind::MessageIds, id)? else {
        return Ok(None);
    };
    tx_read(tx, Kind::Messages, at)
}

/// Applies `change` to a live message and files it under the room's next change cursor.
pub(crate) fn change_message(
    tx: &Tx<'_>,
    id: MessageId,
    change: impl Fn(&mut Message),
) -> StoreResult<Message> {
    let at = tx
        .get(Kind::MessageIds, id.0.as_bytes())?
        .ok_or(StoreError::NotFound(Entity::Message))?;
    let mut message: Message = tx_read(tx, Kind::Messages, &at)?
        .filter(|message: &Message| !message.is_deleted())
        .ok_or(StoreError::NotFound(Entity::Message))?;
    let (room_id, seq) = location(&at)?;
    let mut room = tx_room(tx, room_id)?;
    room.last_change += 1;
    tx.remove(Kind::Changes, counter_key(room_id.0, message.change_id))?;
    let body = message.body.clone();
    change(&mut message);
    // A message is found by its current text; a tombstone by nothing.
    if message.body != body || message.is_deleted() {
        tx_unindex(tx, &message, &body)?;
        if !message.is_deleted() {
            tx_index(tx, &message, &terms(&message.body))?;
        }
    }
    message.change_id = room.last_change;
    tx.insert(
        Kind::Changes,
        counter_key(room_id.0, message.change_id),
        &seq.to_be_bytes(),
    )?;
    tx_write(tx, Kind::Messages, &at, &message)?;
    tx_put_room(tx, &room)?;
    Ok(message)
}

/// The append of the contract, inside a write; `everyone` holds the room's members when the
/// message mentions the room.
fn tx_append(
    tx: &Tx<'_>,
    new: &NewStoredMessage,
    terms: &[String],
    everyone: Option<&[UserId]>,
) -> StoreResult<Sent> {
    let mut room = tx_room(tx, new.room_id)?;
    let is_user = tx.get(Kind::Users, new.sender.0.as_bytes())?.is_some();
    let sender = tx_member(tx, room.id, new.sender)?
        .filter(|_| is_user)
        .ok_or(StoreError::NotFound(Entity::Member))?;
    if let Some(reply_to) = new.reply_to {
        let at = tx.get(Kind::MessageIds, reply_to.0.as_bytes())?;
        if !at.is_some_and(|at| at.starts_with(room.id.0.as_bytes())) {
            return Err(StoreError::NotFound(Entity::Message));
        }
    }
    let root = match new.thread_root {
        Some(root) => Some(tx_thread_root(tx, room.id, root)?),
        None => None,
    };
    if let Some(original) = tx_original(tx, new)? {
        return Ok(Sent {
            message: original,
            created: false,
        });
    }
    let mut kept = Vec::with_capacity(new.mentions.len());
    for user in &new.mentions {
        if tx_member(tx, room.id, *user)?.is_some() {
            kept.push(*user);
        }
    }
    room.last_seq += 1;
    room.last_change += 1;
    let mut message = new.stored_at(room.last_seq, room.last_change);
    message.mentions = kept;
    tx_mention(tx, &message, everyone.unwrap_or(&message.mentions))?;
    if let Some((root, root_at)) = root {
        tx_count_reply(tx, root, root_at, &message)?;
    }
    let key = counter_key(room.id.0, message.seq);
    tx_write(tx, Kind::Messages, key, &message)?;
    tx_index(tx, &message, terms)?;
    tx.insert(Kind::MessageIds, message.id.0.as_bytes(), &key)?;
    if let Some(txn_id) = &message.txn_id {
        let txn_key = pair(message.sender.0, txn_id.as_bytes());
        tx.insert(Kind::TxnIds, txn_key, message.id.0.as_bytes())?;
    }
    let change_key = counter_key(room.id.0, message.change_id);
    tx.insert(Kind::Changes, change_key, &message.seq.to_be_bytes())?;
    let moved = Member {
        last_read_seq: sender.last_read_seq.max(message.seq),
        ..sender
    };
    tx_write(
        tx,
        Kind::Members,
        member_key(room.id, message.sender),
        &moved,
    )?;
    tx_put_room(tx, &room)?;
    Ok(Sent {
        message,
        created: true,
    })
}

#[async_trait]
impl MessageStore for SledStore {
    async fn append_message(&self, new: &NewStoredMessage) -> StoreResult<Sent> {
        let new = new.clone();
        // Split outside the one writer, which every send waits for.
        let terms = terms(&new.body);
        if new.mentions_room {
            // Mentioning the room mentions every member: scanned before the write, which runs
            // alone.
            let room = new.room_id;
            return self
                .write_scanning(
                    move |trees| members_of(trees, room),
                    move |tx, members| {
                        let everyone: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
                        tx_append(tx, &new, &terms, Some(&everyone))
                    },
                )
                .await;
        }
        self.write(move |tx| tx_append(tx, &new, &terms, None))
            .await
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        match self.trees.get(Kind::MessageIds, id.0.as_bytes())? {
            Some(at) => read(&self.trees, Kind::Messages, at),
            None => Ok(None),
        }
    }

    async fn edit_message(
        &self,
        id: MessageId,
        body: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Message> {
        let body = body.to_owned();
        self.write(move |tx| {
            change_message(tx, id, |message| {
                message.body = body.clone();
                message.edited_at = Some(at);
            })
        })
        .await
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> StoreResult<Message> {
        // A tombstone has no reactions and mentions no one: the write removes what the scan
        // just before it found.
        self.write_scanning(
            move |trees| match trees.get(Kind::MessageIds, id.0.as_bytes())? {
                Some(at) => {
                    let mut keys = reaction_keys(trees, &at)?;
                    keys.extend(mention_and_thread_keys(trees, &at, false)?);
                    Ok(keys)
                }
                None => Ok(Vec::new()),
            },
            move |tx, reactions| {
                let message = change_message(tx, id, |message| {
                    message.body.clear();
                    message.metadata = None;
                    message.deleted_at = Some(at);
                })?;
                for (kind, key) in reactions {
                    tx.remove(*kind, key)?;
                }
                Ok(message)
            },
        )
        .await
    }

    async fn messages(&self, room: RoomId, range: SeqRange) -> StoreResult<Vec<Message>> {
        let after = range.after.unwrap_or(0);
        let before = range.before.unwrap_or(u64::MAX);
        if after >= before {
            return Ok(Vec::new());
        }
        let bounds = (
            Bound::Excluded(counter_key(room.0, after)),
            Bound::Excluded(counter_key(room.0, before)),
        );
        let scan = self.trees.tree(Kind::Messages).range(bounds).values();
        let limit = range.limit as usize;
        let values: Vec<_> = if range.after.is_some() {
            scan.take(limit).collect()
        } else {
            let mut newest: Vec<_> = scan.rev().take(limit).collect();
            newest.reverse();
            newest
        };
        values
            .into_iter()
            .map(|value| decode(&value.map_err(backend)?))
            .collect()
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<Message>> {
        self.search_messages(query)
    }

    async fn replace_unread_mentions(
        &self,
        seen: SeenCounters,
        mentions: &[Mention],
    ) -> StoreResult<bool> {
        let room = seen.room;
        let mentions = mentions.to_vec();
        self.write_scanning(
            move |trees| unread_mention_keys(trees, room),
            move |tx, old| {
                if RoomCounters::of(&tx_room(tx, room)?) != seen.counters {
                    return Ok(false);
                }
                for (kind, key) in old {
                    tx.remove(*kind, key)?;
                }
                for mention in &mentions {
                    tx_put_mention(tx, room, mention)?;
                }
                Ok(true)
            },
        )
        .await
    }

    async fn mentions(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        self.mentions_of(user, before, limit)
    }

    async fn mentions_between(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<Mention>> {
        self.mentions_between(room, seqs)
    }

    async fn changes(&self, room: RoomId, after: u64, limit: u32) -> StoreResult<Vec<Message>> {
        if after == u64::MAX {
            return Ok(Vec::new());
        }
        let bounds = (
            Bound::Excluded(counter_key(room.0, after)),
            Bound::Included(counter_key(room.0, u64::MAX)),
        );
        let mut changed = Vec::new();
        let scan = self.trees.tree(Kind::Changes).range(bounds).values();
        for value in scan.take(limit as usize) {
            let seq = counter(&value.map_err(backend)?)?;
            if let Some(message) = read(&self.trees, Kind::Messages, counter_key(room.0, seq))? {
                changed.push(message);
            }
        }
        Ok(changed)
    }
}
