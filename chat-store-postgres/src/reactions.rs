//! Reactions: one row per member, key and message, read a page at a time.
//!
//! A change runs in a transaction that first locks the room's row, as appends and edits do:
//! changes of one room's reactions take turns, so "at most `max_keys` keys" and the change
//! cursor hold however many processes write at once.

use std::ops::RangeInclusive;

use async_trait::async_trait;
use chat_core::store::ReactionStore;
use chat_core::{Conflict, Entity, Message, MessageId, Reaction, RoomId, StoreError, UserId};
use sqlx::{PgConnection, Row};

use crate::PostgresStore;
use crate::codec::{self, StoreResult, int, map_err};
use crate::messages::TOUCH;

/// Locks the room of message `$1`, if the message exists.
const LOCK: &str = "\
    SELECT 1 FROM rooms WHERE id = (SELECT room_id FROM messages WHERE id = $1) FOR UPDATE";

/// A live message's position, whether `$2` is a member of its room, whether the message has
/// key `$3` and how many different keys it has.
const TARGET: &str = "\
    SELECT m.room_id, m.seq, \
           EXISTS (SELECT 1 FROM members WHERE room_id = m.room_id AND user_id = $2) AS member, \
           EXISTS (SELECT 1 FROM reactions \
                   WHERE room_id = m.room_id AND seq = m.seq AND key = $3) AS known_key, \
           (SELECT count(DISTINCT key) FROM reactions \
            WHERE room_id = m.room_id AND seq = m.seq) AS keys \
    FROM messages AS m WHERE m.id = $1 AND m.deleted_at IS NULL";

/// A reaction change: `write` (an insert or a delete of the reaction row, binding room, seq,
/// key and user) once the contract's checks pass, then the change cursor if it wrote.
async fn change(
    c: &mut PgConnection,
    id: MessageId,
    user: UserId,
    key: &str,
    max_keys: Option<u32>,
    write: &'static str,
) -> StoreResult<Option<Message>> {
    sqlx::query(LOCK)
        .bind(id.0)
        .execute(&mut *c)
        .await
        .map_err(map_err)?;
    let row = sqlx::query(TARGET)
        .bind(id.0)
        .bind(user.0)
        .bind(key)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound(Entity::Message))?;
    let flag = |column| row.try_get::<bool, _>(column).map_err(map_err);
    if !flag("member")? {
        return Err(StoreError::NotFound(Entity::Member));
    }
    if let Some(max_keys) = max_keys
        && !flag("known_key")?
        && row.try_get::<i64, _>("keys").map_err(map_err)? >= i64::from(max_keys)
    {
        return Err(StoreError::Conflict(Conflict::TooManyReactions));
    }
    let room: uuid::Uuid = row.try_get("room_id").map_err(map_err)?;
    let seq: i64 = row.try_get("seq").map_err(map_err)?;
    let written = sqlx::query(write)
        .bind(room)
        .bind(seq)
        .bind(key)
        .bind(user.0)
        .execute(&mut *c)
        .await
        .map_err(map_err)?;
    if written.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query(TOUCH)
        .bind(id.0)
        .fetch_one(&mut *c)
        .await
        .map_err(map_err)?;
    codec::message(&row).map(Some)
}

impl PostgresStore {
    async fn change_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
        max_keys: Option<u32>,
        write: &'static str,
    ) -> StoreResult<Option<Message>> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let changed = change(&mut tx, id, user, key, max_keys, write).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(changed)
    }
}

#[async_trait]
impl ReactionStore for PostgresStore {
    async fn add_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
        max_keys: u32,
    ) -> StoreResult<Option<Message>> {
        let insert = "INSERT INTO reactions (room_id, seq, key, user_id) \
                      VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
        self.change_reaction(id, user, key, Some(max_keys), insert)
            .await
    }

    async fn remove_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
    ) -> StoreResult<Option<Message>> {
        let delete = "DELETE FROM reactions \
                      WHERE room_id = $1 AND seq = $2 AND key = $3 AND user_id = $4";
        self.change_reaction(id, user, key, None, delete).await
    }

    async fn reactions(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
        viewer: UserId,
    ) -> StoreResult<Vec<(u64, Reaction)>> {
        let rows = sqlx::query(
            "SELECT seq, key, count(*) AS count, bool_or(user_id = $4) AS me FROM reactions \
             WHERE room_id = $1 AND seq BETWEEN $2 AND $3 \
             GROUP BY seq, key ORDER BY seq, key",
        )
        .bind(room.0)
        .bind(int(*seqs.start()))
        .bind(int(*seqs.end()))
        .bind(viewer.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                let seq: i64 = row.try_get("seq")?;
                let count: i64 = row.try_get("count")?;
                let reaction = Reaction {
                    key: row.try_get("key")?,
                    count: u32::try_from(count).unwrap_or(u32::MAX),
                    me: row.try_get("me")?,
                };
                Ok((u64::try_from(seq).unwrap_or_default(), reaction))
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(map_err)
    }

    async fn reactors(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<(u64, String, UserId)>> {
        let rows: Vec<(i64, String, uuid::Uuid)> = sqlx::query_as(
            "SELECT seq, key, user_id FROM reactions \
             WHERE room_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, key, user_id",
        )
        .bind(room.0)
        .bind(int(*seqs.start()))
        .bind(int(*seqs.end()))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let reactor = |(seq, key, user): (i64, String, uuid::Uuid)| {
            (u64::try_from(seq).unwrap_or_default(), key, UserId(user))
        };
        Ok(rows.into_iter().map(reactor).collect())
    }
}
