//! Threads and mentions: replies by thread, threads by activity, thread markers, and the
//! counts of what mentions a user. The trigger of migration 0003 keeps the counts as each
//! message is stored.

use async_trait::async_trait;
use chat_core::store::{SeenCounters, SeqRange, ThreadMarker, ThreadStore};
use chat_core::{
    Entity, Message, MessageId, RoomId, StoreError, Thread, ThreadSummary, UnreadCounts, UserId,
};
use sqlx::postgres::PgRow;

use crate::PostgresStore;
use crate::codec::{self, StoreResult, get, int, map_err, message_columns, uint};
use crate::rooms::counters_are;

/// A user's unread mentions and followed replies in each of its rooms (or in `$2` alone).
pub(crate) const UNREAD_COUNTS: &str = "\
    SELECT * FROM ( \
        SELECT mb.room_id, \
               (SELECT count(*) FROM mentions AS x WHERE x.user_id = mb.user_id \
                  AND x.room_id = mb.room_id AND x.seq > mb.last_read_seq) AS mentions, \
               (SELECT coalesce(sum(GREATEST(root.thread_count - t.read, 0)), 0)::bigint \
                  FROM thread_markers AS t \
                  JOIN messages AS root ON root.room_id = t.room_id AND root.seq = t.root_seq \
                  WHERE t.user_id = mb.user_id AND t.room_id = mb.room_id AND t.following) \
                 AS threads \
        FROM members AS mb WHERE mb.user_id = $1 AND ($2::uuid IS NULL OR mb.room_id = $2)) \
        AS counts \
    WHERE mentions > 0 OR threads > 0";

pub(crate) fn unread_counts(row: &PgRow) -> StoreResult<UnreadCounts> {
    Ok(UnreadCounts {
        room_id: RoomId(get(row, "room_id")?),
        mentions: uint(get(row, "mentions")?)?,
        threads: uint(get(row, "threads")?)?,
    })
}

#[async_trait]
impl ThreadStore for PostgresStore {
    async fn replies(
        &self,
        room: RoomId,
        root: MessageId,
        range: SeqRange,
    ) -> StoreResult<Vec<Message>> {
        let sql = [
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE room_id = $1 AND thread_root = $2 \
                 AND seq > $3 AND seq < $4 ORDER BY seq ASC LIMIT $5"
            ),
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE room_id = $1 AND thread_root = $2 \
                 AND seq > $3 AND seq < $4 ORDER BY seq DESC LIMIT $5"
            ),
        ];
        self.seq_page(range, sql, |query| query.bind(room.0).bind(root.0))
            .await
    }

    async fn threads(
        &self,
        room: RoomId,
        viewer: UserId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<Thread>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            ", GREATEST(thread_count - coalesce((SELECT read FROM thread_markers AS t \
                 WHERE t.room_id = m.room_id AND t.root_seq = m.seq AND t.user_id = $2), 0), 0) \
               AS unread \
             FROM messages AS m WHERE room_id = $1 AND thread_last_seq < $3 \
             ORDER BY thread_last_seq DESC LIMIT $4"
        );
        sqlx::query(sql)
            .bind(room.0)
            .bind(viewer.0)
            .bind(before.map_or(i64::MAX, int))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(|row| {
                Ok(Thread {
                    root: codec::message(row)?,
                    unread: uint(get(row, "unread")?)?,
                })
            })
            .collect()
    }

    async fn repair_thread(
        &self,
        seen: SeenCounters,
        root: MessageId,
        summary: Option<&ThreadSummary>,
    ) -> StoreResult<bool> {
        let room = seen.room;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if !counters_are(&mut tx, room, seen.counters).await? {
            return Ok(false);
        }
        let participants = summary.map(|s| s.participants.iter().map(|u| u.0).collect::<Vec<_>>());
        let done = sqlx::query(
            "UPDATE messages SET thread_count = $3, thread_last_seq = $4, thread_last_at = $5, \
             thread_participants = $6 WHERE id = $1 AND room_id = $2",
        )
        .bind(root.0)
        .bind(room.0)
        .bind(summary.map_or(0, |s| int(s.reply_count)))
        .bind(summary.map(|s| int(s.last_reply_seq)))
        .bind(summary.map(|s| s.last_reply_at))
        .bind(participants)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Message));
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn thread_markers(&self, room: RoomId) -> StoreResult<Vec<ThreadMarker>> {
        let rows: Vec<(i64, uuid::Uuid, i64, bool)> = sqlx::query_as(
            "SELECT root_seq, user_id, read, following FROM thread_markers \
             WHERE room_id = $1 ORDER BY root_seq, user_id",
        )
        .bind(room.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        let marker =
            |(root_seq, user, read, following): (i64, uuid::Uuid, i64, bool)| ThreadMarker {
                root_seq: u64::try_from(root_seq).unwrap_or_default(),
                user: UserId(user),
                read: u64::try_from(read).unwrap_or_default(),
                following,
            };
        Ok(rows.into_iter().map(marker).collect())
    }

    async fn mark_thread_read(
        &self,
        room: RoomId,
        root: MessageId,
        user: UserId,
        seq: u64,
    ) -> StoreResult<u64> {
        let (member, root_seq, count, read): (bool, Option<i64>, Option<i64>, Option<i64>) =
            sqlx::query_as(
                "SELECT EXISTS (SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2), \
                        root.seq, root.thread_count, \
                        (SELECT thread_no FROM messages \
                         WHERE room_id = $1 AND thread_root = $3 AND seq <= $4 \
                         ORDER BY seq DESC LIMIT 1) \
                 FROM (SELECT 1) AS one LEFT JOIN messages AS root \
                   ON root.id = $3 AND root.room_id = $1 AND root.thread_root IS NULL",
            )
            .bind(room.0)
            .bind(user.0)
            .bind(root.0)
            .bind(int(seq))
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        if !member {
            return Err(StoreError::NotFound(Entity::Member));
        }
        let (Some(root_seq), Some(_)) = (root_seq, count) else {
            return Err(StoreError::NotFound(Entity::Thread));
        };
        // A reply counted since the read above only raises the count: the marker stays right.
        let (read, count): (i64, i64) = sqlx::query_as(
            "WITH marker AS ( \
                 INSERT INTO thread_markers (room_id, root_seq, user_id, read, following) \
                 VALUES ($1, $2, $3, $4, false) ON CONFLICT (room_id, root_seq, user_id) \
                 DO UPDATE SET read = GREATEST(thread_markers.read, excluded.read) \
                 RETURNING read) \
             SELECT read, (SELECT thread_count FROM messages \
                           WHERE room_id = $1 AND seq = $2) FROM marker",
        )
        .bind(room.0)
        .bind(root_seq)
        .bind(user.0)
        .bind(read.unwrap_or(0))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        uint((count - read).max(0))
    }
}
