//! The writes of an import: records as exported, each batch in one transaction, with the
//! keys an append derives from them (thread summaries and places, the search index,
//! transaction ids, changes) derived by the append's own helpers.

use std::sync::Arc;

use async_trait::async_trait;
use chat_core::store::{ImportStore, Mention, ThreadMarker};
use chat_core::{Conflict, Member, Message, Room, RoomId, StoreError, UserId};

use crate::SledStore;
use crate::codec::{StoreResult, counter_key, pair, tx_read, tx_write};
use crate::reactions::tx_put_reaction;
use crate::rooms::{direct_key, members_of, tx_member, tx_put_member, tx_put_room, tx_room};
use crate::search::tx_index;
use crate::threads::{tx_place_reply, tx_put_mention, tx_put_thread_marker};
use crate::tx::{Kind, Tx};

/// The `meta` key of an unfinished import's mark.
const MARK: &str = "import";

/// Stores one message as exported, and what an append derives from it but its mentions.
fn tx_import_message(tx: &Tx<'_>, message: &Message) -> StoreResult<()> {
    let mut message = message.clone();
    message.thread = None;
    message.reactions.clear();
    let room = message.room_id;
    if let Some(root) = message.thread_root
        && let Some(root_at) = tx.get(Kind::MessageIds, root.0.as_bytes())?
        && let Ok(root_at) = <[u8; 24]>::try_from(root_at.as_ref())
        && let Some(root) = tx_read::<Message>(tx, Kind::Messages, root_at)?
    {
        tx_place_reply(tx, root, root_at, &message)?;
    }
    if !message.is_deleted() {
        tx_index(tx, &message, &chat_core::search::terms(&message.body))?;
    }
    let at = counter_key(room.0, message.seq);
    tx_write(tx, Kind::Messages, at, &message)?;
    tx.insert(Kind::MessageIds, message.id.0.as_bytes(), &at)?;
    if let Some(txn_id) = &message.txn_id {
        let txn_key = pair(message.sender.0, txn_id.as_bytes());
        tx.insert(Kind::TxnIds, txn_key, message.id.0.as_bytes())?;
    }
    let change = counter_key(room.0, message.change_id);
    tx.insert(Kind::Changes, change, &message.seq.to_be_bytes())
}

#[async_trait]
impl ImportStore for SledStore {
    async fn import_mark(&self) -> StoreResult<Option<String>> {
        let mark = self.trees.get(Kind::Meta, MARK)?;
        Ok(mark.map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    async fn set_import_mark(&self, mark: Option<&str>) -> StoreResult<()> {
        let mark = mark.map(str::to_owned);
        self.write(move |tx| match &mark {
            Some(mark) => tx.insert(Kind::Meta, MARK, mark.as_bytes()),
            None => tx.remove(Kind::Meta, MARK).map(drop),
        })
        .await
    }

    async fn import_room(&self, room: &Room) -> StoreResult<()> {
        let room = Room {
            member_count: 0,
            last_seq: 0,
            last_change: 0,
            ..room.clone()
        };
        self.write(move |tx| {
            if tx.get(Kind::Rooms, room.id.0.as_bytes())?.is_some() {
                return Ok(());
            }
            if let Some(alias) = &room.alias {
                if tx.get(Kind::Aliases, alias)?.is_some() {
                    return Err(StoreError::Conflict(Conflict::AliasTaken));
                }
                tx.insert(Kind::Aliases, alias, room.id.0.as_bytes())?;
            }
            tx_put_room(tx, &room)
        })
        .await
    }

    async fn import_members(&self, room: RoomId, members: &[Member]) -> StoreResult<()> {
        let members = Arc::new(members.to_vec());
        self.write(move |tx| {
            for member in members.iter() {
                if tx_member(tx, room, member.user_id)?.is_none() {
                    tx_put_member(tx, member)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn import_messages(
        &self,
        room: RoomId,
        messages: &[Message],
        mentions: &[Mention],
    ) -> StoreResult<()> {
        let (messages, mentions) = (Arc::new(messages.to_vec()), Arc::new(mentions.to_vec()));
        self.write(move |tx| {
            let mut stored = tx_room(tx, room)?;
            for message in messages.iter() {
                tx_import_message(tx, message)?;
                stored.last_seq = message.seq;
                stored.last_change = stored.last_change.max(message.change_id);
            }
            for mention in mentions.iter() {
                tx_put_mention(tx, room, mention)?;
            }
            tx_put_room(tx, &stored)
        })
        .await
    }

    async fn import_reactions(
        &self,
        room: RoomId,
        reactions: &[(u64, String, UserId)],
    ) -> StoreResult<()> {
        let reactions = Arc::new(reactions.to_vec());
        self.write(move |tx| {
            for (seq, key, user) in reactions.iter() {
                tx_put_reaction(tx, counter_key(room.0, *seq), *user, key, None)?;
            }
            Ok(())
        })
        .await
    }

    async fn import_thread_markers(
        &self,
        room: RoomId,
        markers: &[ThreadMarker],
    ) -> StoreResult<()> {
        let markers = Arc::new(markers.to_vec());
        self.write(move |tx| {
            for m in markers.iter() {
                tx_put_thread_marker(tx, room, m.root_seq, m.user, (m.read, m.following))?;
            }
            Ok(())
        })
        .await
    }

    async fn finish_room_import(&self, room: &Room) -> StoreResult<()> {
        let (id, exported) = (room.id, room.clone());
        self.write_scanning(
            move |trees| members_of(trees, id),
            move |tx, members| {
                let mut room = tx_room(tx, id)?;
                room.member_count = exported.member_count;
                room.last_seq = exported.last_seq;
                room.last_change = exported.last_change;
                tx_put_room(tx, &room)?;
                if let ([a, b], true) = (members.as_slice(), room.is_direct()) {
                    let key = direct_key(a.user_id, b.user_id);
                    tx.insert(Kind::DirectPairs, key, room.id.0.as_bytes())?;
                }
                Ok(())
            },
        )
        .await
    }
}
