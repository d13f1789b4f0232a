//! The writes of an import: rows as exported, each batch one statement in one transaction
//! (the rows passed as one JSON array). The insert trigger derives what an append derives
//! (thread summaries and places); what it derives that the export holds as it was (mentions,
//! thread markers) gives way to the exported rows in the same transaction.

use async_trait::async_trait;
use chat_core::store::{ImportStore, Mention, ThreadMarker};
use chat_core::{Entity, Member, Message, Room, RoomId, RoomKind, StoreError, UserId};
use serde_json::json;
use sqlx::PgConnection;

use crate::PostgresStore;
use crate::codec::{StoreResult, int, map_err, metadata_json};
use crate::rooms::insert_room;

/// The `chat_meta` key of an unfinished import's mark.
const MARK: &str = "import";

const IMPORT_MESSAGES: &str = "\
    INSERT INTO messages (room_id, seq, id, sender, body, reply_to, txn_id, metadata, \
                          created_at, edited_at, deleted_at, change_id, thread_root, mentions, \
                          mentions_room, search_terms) \
    SELECT room_id, seq, id, sender, body, reply_to, txn_id, metadata, created_at, edited_at, \
           deleted_at, change_id, thread_root, mentions, mentions_room, \
           array_to_tsvector(terms) \
    FROM jsonb_to_recordset($1::jsonb) AS m (room_id uuid, seq bigint, id uuid, sender uuid, \
        body text, reply_to uuid, txn_id text, metadata text, created_at timestamptz, \
        edited_at timestamptz, deleted_at timestamptz, change_id bigint, thread_root uuid, \
        mentions uuid[], mentions_room boolean, terms text[]) \
    ORDER BY seq";

/// Runs `sql` with one JSON array of rows.
async fn execute(
    c: &mut PgConnection,
    sql: &'static str,
    rows: serde_json::Value,
) -> StoreResult<()> {
    sqlx::query(sql)
        .bind(rows)
        .execute(c)
        .await
        .map_err(map_err)
        .map(drop)
}

#[async_trait]
impl ImportStore for PostgresStore {
    async fn import_mark(&self) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM chat_meta WHERE key = $1")
            .bind(MARK)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)
    }

    async fn set_import_mark(&self, mark: Option<&str>) -> StoreResult<()> {
        let query = match mark {
            Some(mark) => sqlx::query(
                "INSERT INTO chat_meta (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(MARK)
            .bind(mark),
            None => sqlx::query("DELETE FROM chat_meta WHERE key = $1").bind(MARK),
        };
        query.execute(&self.pool).await.map_err(map_err).map(drop)
    }

    async fn import_room(&self, room: &Room) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let exists = sqlx::query("SELECT 1 FROM rooms WHERE id = $1")
            .bind(room.id.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if exists.is_none() {
            insert_room(&mut tx, room, 0).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn import_members(&self, _room: RoomId, members: &[Member]) -> StoreResult<()> {
        let rows: Vec<_> = (members.iter())
            .map(|m| {
                json!({"room_id": m.room_id.0, "user_id": m.user_id.0, "role": m.role.as_str(),
                       "joined_at": m.joined_at, "last_read_seq": m.last_read_seq})
            })
            .collect();
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        let sql = "INSERT INTO members (room_id, user_id, role, joined_at, last_read_seq) \
            SELECT * FROM jsonb_to_recordset($1::jsonb) AS m (room_id uuid, user_id uuid, \
                role text, joined_at timestamptz, last_read_seq bigint) \
            ON CONFLICT DO NOTHING";
        execute(&mut c, sql, json!(rows)).await
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
        let last_change = messages.iter().map(|m| m.change_id).max().unwrap_or(0);
        let mut rows = Vec::with_capacity(messages.len());
        for m in messages {
            let terms = match m.is_deleted() {
                true => None,
                false => Some(chat_core::search::terms(&m.body)),
            };
            let mentions = (!m.mentions.is_empty()).then_some(&m.mentions);
            rows.push(json!({
                "room_id": m.room_id.0, "seq": m.seq, "id": m.id.0, "sender": m.sender.0,
                "body": m.body, "reply_to": m.reply_to.map(|id| id.0), "txn_id": m.txn_id,
                "metadata": metadata_json(&m.metadata)?, "created_at": m.created_at,
                "edited_at": m.edited_at, "deleted_at": m.deleted_at, "change_id": m.change_id,
                "thread_root": m.thread_root.map(|id| id.0), "mentions": mentions,
                "mentions_room": m.mentions_room, "terms": terms,
            }));
        }
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        execute(&mut tx, IMPORT_MESSAGES, json!(rows)).await?;
        sqlx::query("DELETE FROM mentions WHERE room_id = $1 AND seq BETWEEN $2 AND $3")
            .bind(room.0)
            .bind(int(first.seq))
            .bind(int(last.seq))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let mentions: Vec<_> = (mentions.iter())
            .map(|m| json!({"user_id": m.user.0, "seq": m.seq, "message_id": m.message.0}))
            .collect();
        sqlx::query(
            "INSERT INTO mentions (user_id, room_id, seq, message_id) \
             SELECT user_id, $2, seq, message_id FROM jsonb_to_recordset($1::jsonb) \
                 AS m (user_id uuid, seq bigint, message_id uuid)",
        )
        .bind(json!(mentions))
        .bind(room.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("DELETE FROM thread_markers WHERE room_id = $1")
            .bind(room.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "UPDATE rooms SET last_seq = $2, last_change = GREATEST(last_change, $3) \
             WHERE id = $1",
        )
        .bind(room.0)
        .bind(int(last.seq))
        .bind(int(last_change))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn import_reactions(
        &self,
        room: RoomId,
        reactions: &[(u64, String, UserId)],
    ) -> StoreResult<()> {
        let rows: Vec<_> = (reactions.iter())
            .map(|(seq, key, user)| json!({"seq": seq, "key": key, "user_id": user.0}))
            .collect();
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        sqlx::query(
            "INSERT INTO reactions (room_id, seq, key, user_id) \
             SELECT $2, seq, key, user_id FROM jsonb_to_recordset($1::jsonb) \
                 AS r (seq bigint, key text, user_id uuid) \
             ON CONFLICT DO NOTHING",
        )
        .bind(json!(rows))
        .bind(room.0)
        .execute(&mut *c)
        .await
        .map_err(map_err)
        .map(drop)
    }

    async fn import_thread_markers(
        &self,
        room: RoomId,
        markers: &[ThreadMarker],
    ) -> StoreResult<()> {
        let rows: Vec<_> = (markers.iter())
            .map(|m| {
                json!({"root_seq": m.root_seq, "user_id": m.user.0, "read": m.read,
                       "following": m.following})
            })
            .collect();
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        sqlx::query(
            "INSERT INTO thread_markers (room_id, root_seq, user_id, read, following) \
             SELECT $2, root_seq, user_id, read, following FROM jsonb_to_recordset($1::jsonb) \
                 AS m (root_seq bigint, user_id uuid, read bigint, following boolean) \
             ON CONFLICT (room_id, root_seq, user_id) DO UPDATE \
             SET read = excluded.read, following = excluded.following",
        )
        .bind(json!(rows))
        .bind(room.0)
        .execute(&mut *c)
        .await
        .map_err(map_err)
        .map(drop)
    }

    async fn finish_room_import(&self, room: &Room) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query(
            "UPDATE rooms SET member_count = $2, last_seq = $3, last_change = $4 WHERE id = $1",
        )
        .bind(room.id.0)
        .bind(i64::from(room.member_count))
        .bind(int(room.last_seq))
        .bind(int(room.last_change))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Room));
        }
        if room.kind == RoomKind::Direct {
            sqlx::query(
                "INSERT INTO direct_pairs (user_a, user_b, room_id) \
                 SELECT min(user_id::text)::uuid, max(user_id::text)::uuid, $1 FROM members \
                 WHERE room_id = $1 HAVING count(*) = 2 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(room.id.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }
}
