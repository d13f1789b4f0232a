//! Threads and mentions: replies by thread, threads by activity, thread markers, and the
//! counts and lists of what mentions a user. The triggers of migration 0007 keep the counts as
//! each message is stored.

use async_trait::async_trait;
use chat_core::store::{SeenCounters, SeqRange, ThreadMarker, ThreadStore};
use chat_core::{
    Entity, Message, MessageId, RoomId, StoreError, Thread, ThreadSummary, UnreadCounts, UserId,
};
use sqlx::Row;

use crate::SqliteStore;
use crate::codec::{self, StoreResult, int, map_err, message_columns, micros};
use crate::messages::seq_page;
use crate::rooms::counters_are;

/// The messages that mention a user, newest first.
pub(crate) const MENTIONS: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM mentions AS x JOIN messages USING (room_id, seq) \
     WHERE x.user_id = ?1 AND x.message_id < ?2 ORDER BY x.message_id DESC LIMIT ?3"
);

/// A user's unread mentions and followed replies in each of its rooms (or in `?2` alone).
pub(crate) const UNREAD_COUNTS: &str = "\
    SELECT * FROM ( \
        SELECT mb.room_id, \
               (SELECT count(*) FROM mentions AS x WHERE x.user_id = mb.user_id \
                  AND x.room_id = mb.room_id AND x.seq > mb.last_read_seq) AS mentions, \
               (SELECT coalesce(sum(max(root.thread_count - t.read, 0)), 0) FROM thread_markers AS t \
                  JOIN messages AS root ON root.room_id = t.room_id AND root.seq = t.root_seq \
                  WHERE t.user_id = mb.user_id AND t.room_id = mb.room_id AND t.following) \
                 AS threads \
        FROM members AS mb WHERE mb.user_id = ?1 AND (?2 IS NULL OR mb.room_id = ?2)) \
    WHERE mentions > 0 OR threads > 0";

pub(crate) fn unread_counts(row: &sqlx::sqlite::SqliteRow) -> StoreResult<UnreadCounts> {
    let count = |column| {
        row.try_get::<i64, _>(column)
            .map(|n| u64::try_from(n).unwrap_or_default())
            .map_err(map_err)
    };
    Ok(UnreadCounts {
        room_id: RoomId(row.try_get("room_id").map_err(map_err)?),
        mentions: count("mentions")?,
        threads: count("threads")?,
    })
}

#[async_trait]
impl ThreadStore for SqliteStore {
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
                " FROM messages WHERE room_id = ? AND thread_root = ? \
                 AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?"
            ),
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages WHERE room_id = ? AND thread_root = ? \
                 AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?"
            ),
        ];
        seq_page(&self.readers, range, sql, |query| {
            query.bind(room.0).bind(root.0)
        })
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
            ", max(thread_count - coalesce((SELECT read FROM thread_markers AS t \
                 WHERE t.room_id = m.room_id AND t.root_seq = m.seq AND t.user_id = ?2), 0), 0) \
               AS unread \
             FROM messages AS m WHERE room_id = ?1 AND thread_last_seq < ?3 \
             ORDER BY thread_last_seq DESC LIMIT ?4"
        );
        sqlx::query(sql)
            .bind(room.0)
            .bind(viewer.0)
            .bind(before.map_or(i64::MAX, int))
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?
            .iter()
            .map(|row| {
                let unread: i64 = row.try_get("unread").map_err(map_err)?;
                Ok(Thread {
                    root: codec::message(row)?,
                    unread: u64::try_from(unread).unwrap_or_default(),
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
        let summary = summary.cloned();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    if !counters_are(c, room, seen.counters).await? {
                        return Ok(false);
                    }
                    let done = sqlx::query(
                        "UPDATE messages SET thread_count = ?, thread_last_seq = ?, \
                         thread_last_at = ?, thread_participants = ? \
                         WHERE id = ? AND room_id = ?",
                    )
                    .bind(summary.as_ref().map_or(0, |s| int(s.reply_count)))
                    .bind(summary.as_ref().map(|s| int(s.last_reply_seq)))
                    .bind(summary.as_ref().map(|s| micros(s.last_reply_at)))
                    .bind(summary.and_then(|s| codec::user_ids_json(&s.participants)))
                    .bind(root.0)
                    .bind(room.0)
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(Entity::Message));
                    }
                    Ok(true)
                })
            })
            .await
    }

    async fn thread_markers(&self, room: RoomId) -> StoreResult<Vec<ThreadMarker>> {
        let rows: Vec<(i64, uuid::Uuid, i64, bool)> = sqlx::query_as(
            "SELECT root_seq, user_id, read, following FROM thread_markers \
             WHERE room_id = ?1 ORDER BY root_seq, user_id",
        )
        .bind(room.0)
        .fetch_all(&self.readers)
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
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let found = sqlx::query(
                        "SELECT EXISTS (SELECT 1 FROM members \
                                        WHERE room_id = ?1 AND user_id = ?2) AS member, \
                                root.seq, root.thread_count, \
                                (SELECT thread_no FROM messages \
                                 WHERE room_id = ?1 AND thread_root = ?3 AND seq <= ?4 \
                                 ORDER BY seq DESC LIMIT 1) AS read \
                         FROM (SELECT 1) LEFT JOIN messages AS root \
                           ON root.id = ?3 AND root.room_id = ?1 AND root.thread_root IS NULL",
                    )
                    .bind(room.0)
                    .bind(user.0)
                    .bind(root.0)
                    .bind(int(seq))
                    .fetch_one(&mut *c)
                    .await
                    .map_err(map_err)?;
                    let get = |column| row_int(&found, column);
                    if get("member")? != Some(1) {
                        return Err(StoreError::NotFound(Entity::Member));
                    }
                    let (Some(root_seq), Some(count)) = (get("seq")?, get("thread_count")?) else {
                        return Err(StoreError::NotFound(Entity::Thread));
                    };
                    let read: i64 = sqlx::query_scalar(
                        "INSERT INTO thread_markers (room_id, root_seq, user_id, read, following) \
                         VALUES (?, ?, ?, ?, 0) ON CONFLICT (room_id, root_seq, user_id) \
                         DO UPDATE SET read = max(read, excluded.read) RETURNING read",
                    )
                    .bind(room.0)
                    .bind(root_seq)
                    .bind(user.0)
                    .bind(get("read")?.unwrap_or(0))
                    .fetch_one(c)
                    .await
                    .map_err(map_err)?;
                    Ok(u64::try_from(count - read).unwrap_or_default())
                })
            })
            .await
    }
}

fn row_int(row: &sqlx::sqlite::SqliteRow, column: &str) -> StoreResult<Option<i64>> {
    row.try_get(column).map_err(map_err)
}
