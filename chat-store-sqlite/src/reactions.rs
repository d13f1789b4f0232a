//! Reactions: one row per member, key and message, read a page at a time.

use std::ops::RangeInclusive;

use async_trait::async_trait;
use chat_core::store::ReactionStore;
use chat_core::{Conflict, Entity, Message, MessageId, Reaction, RoomId, StoreError, UserId};
use sqlx::{Row, SqliteConnection};

use crate::SqliteStore;
use crate::codec::{StoreResult, int, map_err};
use crate::messages::{TOUCH, change_message};

/// A live message's position, whether the user is a member of its room, and (for `?3`) whether
/// the message has that key and how many different keys it has.
const TARGET: &str = "\
    SELECT m.room_id, m.seq, \
           EXISTS (SELECT 1 FROM members WHERE room_id = m.room_id AND user_id = ?2) AS member, \
           EXISTS (SELECT 1 FROM reactions \
                   WHERE room_id = m.room_id AND seq = m.seq AND key = ?3) AS known_key, \
           (SELECT count(DISTINCT key) FROM reactions \
            WHERE room_id = m.room_id AND seq = m.seq) AS keys \
    FROM messages AS m WHERE m.id = ?1 AND m.deleted_at IS NULL";

/// Where a reaction of `user` with `key` on message `id` goes, once the contract's checks
/// pass; with `max_keys`, also the check of a key new to the message.
async fn target(
    c: &mut SqliteConnection,
    id: MessageId,
    user: UserId,
    key: &str,
    max_keys: Option<u32>,
) -> StoreResult<(Vec<u8>, i64)> {
    let row = sqlx::query(TARGET)
        .bind(id.0)
        .bind(user.0)
        .bind(key)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?
        .ok_or(StoreError::NotFound(Entity::Message))?;
    let get = |column| row.try_get::<i64, _>(column).map_err(map_err);
    if get("member")? == 0 {
        return Err(StoreError::NotFound(Entity::Member));
    }
    if let Some(max_keys) = max_keys
        && get("known_key")? == 0
        && get("keys")? >= i64::from(max_keys)
    {
        return Err(StoreError::Conflict(Conflict::TooManyReactions));
    }
    let room: Vec<u8> = row.try_get("room_id").map_err(map_err)?;
    Ok((room, get("seq")?))
}

/// A reaction change: `write` (an insert or a delete of the reaction row, binding room, seq,
/// key and user) once the contract's checks pass, then the change cursor if it wrote.
async fn change(
    c: &mut SqliteConnection,
    id: MessageId,
    user: UserId,
    key: &str,
    max_keys: Option<u32>,
    write: &'static str,
) -> StoreResult<Option<Message>> {
    let (room, seq) = target(c, id, user, key, max_keys).await?;
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
    change_message(c, id, TOUCH, |query| query).await.map(Some)
}

impl SqliteStore {
    async fn change_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
        max_keys: Option<u32>,
        write: &'static str,
    ) -> StoreResult<Option<Message>> {
        let key = key.to_owned();
        self.writer
            .write(move |c| {
                Box::pin(async move { change(c, id, user, &key, max_keys, write).await })
            })
            .await
    }
}

#[async_trait]
impl ReactionStore for SqliteStore {
    async fn add_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
        max_keys: u32,
    ) -> StoreResult<Option<Message>> {
        let insert = "INSERT INTO reactions (room_id, seq, key, user_id) VALUES (?, ?, ?, ?) \
                      ON CONFLICT DO NOTHING";
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
                      WHERE room_id = ? AND seq = ? AND key = ? AND user_id = ?";
        self.change_reaction(id, user, key, None, delete).await
    }

    async fn reactions(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
        viewer: UserId,
    ) -> StoreResult<Vec<(u64, Reaction)>> {
        let rows = sqlx::query(
            "SELECT seq, key, count(*) AS count, max(user_id = ?4) AS me FROM reactions \
             WHERE room_id = ?1 AND seq BETWEEN ?2 AND ?3 \
             GROUP BY seq, key ORDER BY seq, key",
        )
        .bind(room.0)
        .bind(int(*seqs.start()))
        .bind(int(*seqs.end()))
        .bind(viewer.0)
        .fetch_all(&self.readers)
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
             WHERE room_id = ?1 AND seq BETWEEN ?2 AND ?3 ORDER BY seq, key, user_id",
        )
        .bind(room.0)
        .bind(int(*seqs.start()))
        .bind(int(*seqs.end()))
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        let reactor = |(seq, key, user): (i64, String, uuid::Uuid)| {
            (u64::try_from(seq).unwrap_or_default(), key, UserId(user))
        };
        Ok(rows.into_iter().map(reactor).collect())
    }
}
