//! The writes of an import: rows as exported, each batch in one transaction. The insert
//! triggers derive what an append derives (counters, thread summaries and numbering, the
//! search index); what they derive that the export holds as it was (mentions, thread
//! markers) gives way to the exported rows in the same transaction.

use async_trait::async_trait;
use chat_core::store::{ImportStore, Mention, ThreadMarker};
use chat_core::{Entity, Member, Message, Room, RoomId, RoomKind, StoreError, UserId};
use sqlx::Row;

use crate::SqliteStore;
use crate::codec::{self, StoreResult, int, map_err, metadata_json, micros};
use crate::rooms::insert_room;
use crate::search::{self, last_search_row};

/// The `chat_meta` key of an unfinished import's mark.
const MARK: &str = "import";

/// Messages as exported, given as one JSON array of rows (one statement per batch), in
/// sequence order so that the triggers count each reply after its root; `?2` is the search
/// row before the first.
const IMPORT_MESSAGES: &str = "INSERT INTO messages (room_id, seq, id, sender, body, \
    reply_to, txn_id, metadata, created_at, edited_at, deleted_at, change_id, thread_root, \
    mentions, mentions_room, search_row) \
    SELECT unhex(j.value ->> 0), j.value ->> 1, unhex(j.value ->> 2), unhex(j.value ->> 3), \
           j.value ->> 4, unhex(j.value ->> 5), j.value ->> 6, j.value ->> 7, j.value ->> 8, \
           j.value ->> 9, j.value ->> 10, j.value ->> 11, unhex(j.value ->> 12), \
           j.value ->> 13, j.value ->> 14, ?2 + j.key + 1 \
    FROM json_each(?1) AS j ORDER BY j.key";

#[async_trait]
impl ImportStore for SqliteStore {
    async fn import_mark(&self) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM chat_meta WHERE key = ?")
            .bind(MARK)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)
    }

    async fn set_import_mark(&self, mark: Option<&str>) -> StoreResult<()> {
        let mark = mark.map(str::to_owned);
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let query = match mark {
                        Some(mark) => sqlx::query(
                            "INSERT INTO chat_meta (key, value) VALUES (?, ?) \
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        )
                        .bind(MARK)
                        .bind(mark),
                        None => sqlx::query("DELETE FROM chat_meta WHERE key = ?").bind(MARK),
                    };
                    query.execute(c).await.map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }

    async fn import_room(&self, room: &Room) -> StoreResult<()> {
        let room = room.clone();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let exists = sqlx::query("SELECT 1 FROM rooms WHERE id = ?")
                        .bind(room.id.0)
                        .fetch_optional(&mut *c)
                        .await
                        .map_err(map_err)?;
                    match exists {
                        Some(_) => Ok(()),
                        None => insert_room(c, &room, 0).await,
                    }
                })
            })
            .await
    }

    async fn import_members(&self, _room: RoomId, members: &[Member]) -> StoreResult<()> {
        let members = members.to_vec();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    for member in members {
                        sqlx::query(
                            "INSERT OR IGNORE INTO members \
                             (room_id, user_id, role, joined_at, last_read_seq) \
                             VALUES (?, ?, ?, ?, ?)",
                        )
                        .bind(member.room_id.0)
                        .bind(member.user_id.0)
                        .bind(member.role.as_str())
                        .bind(micros(member.joined_at))
                        .bind(int(member.last_read_seq))
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn import_messages(
        &self,
        room: RoomId,
        messages: &[Message],
        mentions: &[Mention],
    ) -> StoreResult<()> {
        let (Some(first), Some(last)) = (messages.first(), messages.last()) else {
            return Ok(());
        };
        let (first, last) = (int(first.seq), int(last.seq));
        let mut rows = Vec::with_capacity(messages.len());
        for m in messages {
            let hex = |id: uuid::Uuid| id.simple();
            rows.push((
                hex(m.room_id.0),
                m.seq,
                hex(m.id.0),
                hex(m.sender.0),
                &m.body,
                m.reply_to.map(|id| hex(id.0)),
                &m.txn_id,
                metadata_json(&m.metadata)?,
                micros(m.created_at),
                m.edited_at.map(micros),
                m.deleted_at.map(micros),
                m.change_id,
                m.thread_root.map(|id| hex(id.0)),
                codec::user_ids_json(&m.mentions),
                m.mentions_room,
            ));
        }
        let count = i64::try_from(rows.len()).map_err(StoreError::backend)?;
        let rows = serde_json::to_string(&rows).map_err(StoreError::backend)?;
        let mentions = mentions.to_vec();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let search_row: i64 =
                        sqlx::query_scalar(concat!("SELECT ", last_search_row!()))
                            .fetch_one(&mut *c)
                            .await
                            .map_err(map_err)?;
                    sqlx::query(IMPORT_MESSAGES)
                        .bind(rows)
                        .bind(search_row)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    if search::index_due(search_row, search_row + count) {
                        search::index_new(c).await?;
                    }
                    // The triggers' mentions and thread markers give way to those exported.
                    sqlx::query("DELETE FROM mentions WHERE room_id = ? AND seq BETWEEN ? AND ?")
                        .bind(room.0)
                        .bind(first)
                        .bind(last)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    for mention in mentions {
                        sqlx::query(
                            "INSERT INTO mentions (user_id, room_id, seq, message_id) \
                             VALUES (?, ?, ?, ?)",
                        )
                        .bind(mention.user.0)
                        .bind(room.0)
                        .bind(int(mention.seq))
                        .bind(mention.message.0)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    sqlx::query("DELETE FROM thread_markers WHERE room_id = ?")
                        .bind(room.0)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }

    async fn import_reactions(
        &self,
        room: RoomId,
        reactions: &[(u64, String, UserId)],
    ) -> StoreResult<()> {
        let reactions = reactions.to_vec();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    for (seq, key, user) in reactions {
                        sqlx::query(
                            "INSERT OR IGNORE INTO reactions (room_id, seq, key, user_id) \
                             VALUES (?, ?, ?, ?)",
                        )
                        .bind(room.0)
                        .bind(int(seq))
                        .bind(key)
                        .bind(user.0)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn import_thread_markers(
        &self,
        room: RoomId,
        markers: &[ThreadMarker],
    ) -> StoreResult<()> {
        let markers = markers.to_vec();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    for marker in markers {
                        sqlx::query(
                            "INSERT INTO thread_markers \
                             (room_id, root_seq, user_id, read, following) \
                             VALUES (?, ?, ?, ?, ?) \
                             ON CONFLICT (room_id, root_seq, user_id) DO UPDATE \
                             SET read = excluded.read, following = excluded.following",
                        )
                        .bind(room.0)
                        .bind(int(marker.root_seq))
                        .bind(marker.user.0)
                        .bind(int(marker.read))
                        .bind(marker.following)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn finish_room_import(&self, room: &Room) -> StoreResult<()> {
        let room = room.clone();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE rooms SET member_count = ?, last_seq = ?, last_change = ? \
                         WHERE id = ?",
                    )
                    .bind(i64::from(room.member_count))
                    .bind(int(room.last_seq))
                    .bind(int(room.last_change))
                    .bind(room.id.0)
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(Entity::Room));
                    }
                    if room.kind != RoomKind::Direct {
                        return Ok(());
                    }
                    let pair = sqlx::query(
                        "SELECT user_id FROM members WHERE room_id = ? ORDER BY user_id",
                    )
                    .bind(room.id.0)
                    .fetch_all(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if let [a, b] = pair.as_slice() {
                        sqlx::query(
                            "INSERT OR IGNORE INTO direct_pairs (user_a, user_b, room_id) \
                             VALUES (?, ?, ?)",
                        )
                        .bind(a.try_get::<Vec<u8>, _>(0).map_err(map_err)?)
                        .bind(b.try_get::<Vec<u8>, _>(0).map_err(map_err)?)
                        .bind(room.id.0)
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    }
                    Ok(())
                })
            })
            .await
    }
}
