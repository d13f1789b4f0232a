//! Messages: appends with sequence allocation, edits, tombstones, pages and changes.

use std::ops::Bound;

use async_trait::async_trait;
use chat_core::store::{MessageStore, NewStoredMessage, SeqRange};
use chat_core::{Entity, Message, MessageId, RoomId, Sent, StoreError};
use chrono::{DateTime, Utc};
use sled::Transactional;
use sled::transaction::TransactionalTree;

use crate::codec::{
    OrAbort, StoreResult, TxResult, abort, backend, counter, counter_key, decode, decode_opt,
    encode, pair, settled, uuid,
};
use crate::rooms::{member_key, tx_member, tx_put_room, tx_room};
use crate::{SledStore, Trees};

/// Where a message lives: its room and sequence number.
fn location(bytes: &[u8]) -> StoreResult<(RoomId, u64)> {
    Ok((
        RoomId(uuid(bytes.get(..16).unwrap_or_default())?),
        counter(bytes)?,
    ))
}

impl Trees {
    fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let Some(at) = self.message_ids.get(id.0.as_bytes()).map_err(backend)? else {
            return Ok(None);
        };
        let (room, seq) = location(&at)?;
        decode_opt(
            self.messages
                .get(counter_key(room.0, seq))
                .map_err(backend)?,
        )
    }

    /// Applies `change` to a live message and files it under the room's next change cursor.
    fn change_message(&self, id: MessageId, change: impl Fn(&mut Message)) -> StoreResult<Message> {
        settled(
            (
                &self.rooms,
                &self.messages,
                &self.message_ids,
                &self.changes,
            )
                .transaction(|(rooms, messages, ids, changes)| {
                    let Some(at) = ids.get(id.0.as_bytes())? else {
                        return abort(StoreError::NotFound(Entity::Message));
                    };
                    let (room_id, seq) = location(&at).or_abort()?;
                    let key = counter_key(room_id.0, seq);
                    let mut message: Message = match messages.get(key)? {
                        Some(bytes) => decode(&bytes).or_abort()?,
                        None => return abort(StoreError::NotFound(Entity::Message)),
                    };
                    if message.is_deleted() {
                        return abort(StoreError::NotFound(Entity::Message));
                    }
                    let mut room = tx_room(rooms, room_id)?;
                    room.last_change += 1;
                    changes.remove(&counter_key(room_id.0, message.change_id)[..])?;
                    change(&mut message);
                    message.change_id = room.last_change;
                    changes.insert(
                        &counter_key(room_id.0, message.change_id)[..],
                        &seq.to_be_bytes()[..],
                    )?;
                    messages.insert(&key[..], encode(&message).or_abort()?)?;
                    tx_put_room(rooms, &room)?;
                    Ok(message)
                }),
        )
    }
}

/// The message a sender already sent with this transaction id, inside a transaction.
fn tx_original(
    txns: &TransactionalTree,
    ids: &TransactionalTree,
    messages: &TransactionalTree,
    new: &NewStoredMessage,
) -> TxResult<Option<Message>> {
    let Some(txn_id) = &new.txn_id else {
        return Ok(None);
    };
    let Some(id) = txns.get(pair(new.sender.0, txn_id.as_bytes()))? else {
        return Ok(None);
    };
    let Some(at) = ids.get(id)? else {
        return Ok(None);
    };
    let (room, seq) = location(&at).or_abort()?;
    decode_opt(messages.get(counter_key(room.0, seq))?).or_abort()
}

#[async_trait]
impl MessageStore for SledStore {
    async fn append_message(&self, new: &NewStoredMessage) -> StoreResult<Sent> {
        self.write(|t| {
            settled(
                (
                    &t.rooms,
                    &t.messages,
                    &t.message_ids,
                    &t.txn_ids,
                    &t.changes,
                    &t.members,
                )
                    .transaction(
                        |(rooms, messages, ids, txns, changes, members)| {
                            if let Some(original) = tx_original(txns, ids, messages, new)? {
                                return Ok(Sent {
                                    message: original,
                                    created: false,
                                });
                            }
                            let mut room = tx_room(rooms, new.room_id)?;
                            room.last_seq += 1;
                            room.last_change += 1;
                            let message = Message {
                                id: new.id,
                                room_id: new.room_id,
                                seq: room.last_seq,
                                sender: new.sender,
                                body: new.body.clone(),
                                reply_to: new.reply_to,
                                txn_id: new.txn_id.clone(),
                                metadata: new.metadata.clone(),
                                created_at: new.created_at,
                                edited_at: None,
                                deleted_at: None,
                                change_id: room.last_change,
                            };
                            let key = counter_key(room.id.0, message.seq);
                            messages.insert(&key[..], encode(&message).or_abort()?)?;
                            ids.insert(&message.id.0.as_bytes()[..], &key[..])?;
                            if let Some(txn_id) = &message.txn_id {
                                txns.insert(
                                    pair(message.sender.0, txn_id.as_bytes()),
                                    &message.id.0.as_bytes()[..],
                                )?;
                            }
                            changes.insert(
                                &counter_key(room.id.0, message.change_id)[..],
                                &message.seq.to_be_bytes()[..],
                            )?;
                            if let Some(sender) = tx_member(members, room.id, message.sender)? {
                                let moved = chat_core::Member {
                                    last_read_seq: sender.last_read_seq.max(message.seq),
                                    ..sender
                                };
                                members.insert(
                                    member_key(room.id, message.sender),
                                    encode(&moved).or_abort()?,
                                )?;
                            }
                            tx_put_room(rooms, &room)?;
                            Ok(Sent {
                                message,
                                created: true,
                            })
                        },
                    ),
            )
        })
        .await
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        self.trees.message(id)
    }

    async fn edit_message(
        &self,
        id: MessageId,
        body: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Message> {
        self.write(|t| {
            t.change_message(id, |message| {
                message.body = body.to_owned();
                message.edited_at = Some(at);
            })
        })
        .await
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> StoreResult<Message> {
        self.write(|t| {
            t.change_message(id, |message| {
                message.body.clear();
                message.metadata = None;
                message.deleted_at = Some(at);
            })
        })
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
        let scan = self.trees.messages.range(bounds).values();
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

    async fn changes(&self, room: RoomId, after: u64, limit: u32) -> StoreResult<Vec<Message>> {
        let t = &self.trees;
        let start = Bound::Excluded(counter_key(room.0, after));
        let end = Bound::Included(counter_key(room.0, u64::MAX));
        let mut changed = Vec::new();
        for value in t.changes.range((start, end)).values().take(limit as usize) {
            let seq = counter(&value.map_err(backend)?)?;
            if let Some(message) =
                decode_opt(t.messages.get(counter_key(room.0, seq)).map_err(backend)?)?
            {
                changed.push(message);
            }
        }
        Ok(changed)
    }
}
