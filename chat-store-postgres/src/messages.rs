//! Messages: appends (through the [`Appender`](crate::appender::Appender)'s group commit),
//! edits, tombstones, pages and changes.

use std::ops::RangeInclusive;

use async_trait::async_trait;
use chat_core::store::{
    Mention, MessageStore, NewStoredMessage, SearchQuery, SeenCounters, SeqRange,
};
use chat_core::{Entity, Message, MessageId, RoomId, Sent, StoreError, UserId};
use chrono::{DateTime, Utc};

use crate::PostgresStore;
use crate::appender::Appended;
use crate::codec::{self, StoreResult, get, int, map_err, message_columns, uint};
use crate::rooms::counters_are;

/// Applies a change to a live message: the room's change cursor moves on (locking the room's
/// row, as appends do) and the message takes it. `$1` is the message id; the changed columns
/// follow.
macro_rules! change {
    ($($set:literal)?) => {
        concat!(
            "WITH room AS ( \
                UPDATE rooms SET last_change = last_change + 1 \
                WHERE id = (SELECT room_id FROM messages WHERE id = $1 AND deleted_at IS NULL) \
                RETURNING id, last_change \
            ) \
            UPDATE messages SET ",
            $($set, ", ",)?
            "change_id = room.last_change FROM room \
            WHERE messages.id = $1 AND messages.room_id = room.id AND messages.deleted_at IS NULL \
            RETURNING ",
            "messages.room_id, messages.seq, messages.id, messages.sender, messages.body, \
             messages.reply_to, messages.txn_id, messages.metadata, messages.created_at, \
             messages.edited_at, messages.deleted_at, messages.change_id, \
             messages.thread_root, messages.mentions, messages.mentions_room, \
             messages.thread_count, messages.thread_last_seq, messages.thread_last_at, \
             messages.thread_participants"
        )
    };
}

const EDIT: &str = change!("body = $2, edited_at = $3, search_terms = array_to_tsvector($4)");
const DELETE: &str = change!("body = '', metadata = NULL, deleted_at = $2, search_terms = NULL");
/// A reaction's change: the message itself is as it was.
pub(crate) const TOUCH: &str = change!();

/// The most matches [`SEARCH_SPARSE`] reads before [`SEARCH_DENSE`] takes over.
const SPARSE: i64 = 10_000;

/// The searcher's rooms (`$2`; only `$3` when given): `$1` the query, `$4` the cursor.
macro_rules! search_scope {
    () => {
        "search_terms @@ $1::tsquery \
         AND room_id = ANY (ARRAY (SELECT room_id FROM members \
                                   WHERE user_id = $2 AND ($3::uuid IS NULL OR room_id = $3))) \
         AND ($4::uuid IS NULL OR id < $4)"
    };
}

/// Up to `SPARSE + 1` matches through the GIN index, and the newest `$5` of them, each row
/// with how many were found.
const SEARCH_SPARSE: &str = concat!(
    "WITH hits AS MATERIALIZED (SELECT id FROM messages WHERE ",
    search_scope!(),
    " LIMIT 10001) \
     SELECT ",
    message_columns!(),
    ", (SELECT count(*) FROM hits) AS hits FROM messages \
     WHERE id IN (SELECT id FROM hits ORDER BY id DESC LIMIT $5) ORDER BY id DESC"
);

/// The newest `$5` matches, reading messages newest first.
const SEARCH_DENSE: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE ",
    search_scope!(),
    " ORDER BY id DESC LIMIT $5"
);

impl PostgresStore {
    /// The message a sender already sent with this transaction id.
    async fn original(&self, new: &NewStoredMessage) -> StoreResult<Option<Message>> {
        let Some(txn_id) = &new.txn_id else {
            return Ok(None);
        };
        sqlx::query(concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE sender = $1 AND txn_id = $2"
        ))
        .bind(new.sender.0)
        .bind(txn_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?
        .map(|row| codec::message(&row))
        .transpose()
    }
}

/// A statement with some of its parameters bound.
type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl PostgresStore {
    /// Runs an [`EDIT`]: the changed message, or `NotFound` when there is no
    /// live message of that id.
    async fn change(&self, query: Query<'_>) -> StoreResult<Message> {
        query
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .map(|row| codec::message(&row))
            .transpose()?
            .ok_or(StoreError::NotFound(Entity::Message))
    }

    /// A page of messages in sequence order, read by one of two statements that take what the
    /// page is of first (bound by `scope`), then the bounds `seq > $n` and `seq < $n` and a
    /// limit: `up` reads up from `range.after` (ascending), `down` down from `range.before`
    /// (descending, and turned here).
    pub(crate) async fn seq_page(
        &self,
        range: SeqRange,
        [up, down]: [&'static str; 2],
        scope: impl FnOnce(Query<'_>) -> Query<'_>,
    ) -> StoreResult<Vec<Message>> {
        let sql = if range.after.is_some() { up } else { down };
        let mut messages = scope(sqlx::query(sql))
            .bind(range.after.map_or(0, int))
            .bind(range.before.map_or(i64::MAX, int))
            .bind(i64::from(range.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::message)
            .collect::<StoreResult<Vec<_>>>()?;
        if range.after.is_none() {
            messages.reverse();
        }
        Ok(messages)
    }
}

fn resent(message: Message) -> Sent {
    Sent {
        message,
        created: false,
    }
}

impl PostgresStore {
    /// Which check of an append fails now, in the contract's order, if any.
    async fn refusal(&self, new: &NewStoredMessage) -> StoreResult<Option<StoreError>> {
        let (room, member, reply, root): (bool, bool, bool, bool) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM rooms WHERE id = $1), \
                    EXISTS (SELECT 1 FROM members WHERE room_id = $1 AND user_id = $2) \
                    AND EXISTS (SELECT 1 FROM users WHERE id = $2), \
                    $3::uuid IS NULL \
                    OR EXISTS (SELECT 1 FROM messages WHERE id = $3 AND room_id = $1), \
                    $4::uuid IS NULL \
                    OR EXISTS (SELECT 1 FROM messages WHERE id = $4 AND room_id = $1 \
                               AND thread_root IS NULL AND deleted_at IS NULL)",
        )
        .bind(new.room_id.0)
        .bind(new.sender.0)
        .bind(new.reply_to.map(|id| id.0))
        .bind(new.thread_root.map(|id| id.0))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let failed = match (room, member, reply, root) {
            (false, ..) => Entity::Room,
            (true, false, ..) => Entity::Member,
            (true, true, false, _) => Entity::Message,
            (true, true, true, false) => Entity::Thread,
            (true, true, true, true) => return Ok(None),
        };
        Ok(Some(StoreError::NotFound(failed)))
    }
}

#[async_trait]
impl MessageStore for PostgresStore {
    async fn append_message(&self, new: &NewStoredMessage) -> StoreResult<Sent> {
        match self.appender.append(new).await? {
            Appended::Stored {
                seq,
                change_id,
                mentions,
            } => {
                let mut message = new.stored_at(seq, change_id);
                message.mentions = mentions;
                Ok(Sent {
                    message,
                    created: true,
                })
            }
            // A check failed then; if it passes now, something changed since (a join): the
            // sender was not a member when it sent.
            Appended::Refused => Err(self
                .refusal(new)
                .await?
                .unwrap_or(StoreError::NotFound(Entity::Member))),
            // Answered after the commit, so an original from the same batch is there too. The
            // checks come first, as for any append.
            Appended::TxnIdTaken => match self.refusal(new).await? {
                Some(refused) => Err(refused),
                None => self
                    .original(new)
                    .await?
                    .map(resent)
                    .ok_or(StoreError::NotFound(Entity::Room)),
            },
        }
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages WHERE id = $1"
        );
        self.row_where(sql, id.0, codec::message).await
    }

    async fn edit_message(
        &self,
        id: MessageId,
        body: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Message> {
        let terms = chat_core::search::terms(body);
        self.change(sqlx::query(EDIT).bind(id.0).bind(body).bind(at).bind(terms))
            .await
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> StoreResult<Message> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let message = sqlx::query(DELETE)
            .bind(id.0)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .map(|row| codec::message(&row))
            .transpose()?
            .ok_or(StoreError::NotFound(Entity::Message))?;
        // A tombstone has no reactions, and mentions no one.
        for sql in [
            "DELETE FROM reactions WHERE room_id = $1 AND seq = $2",
            "DELETE FROM mentions WHERE room_id = $1 AND seq = $2",
        ] {
            sqlx::query(sql)
                .bind(message.room_id.0)
                .bind(int(message.seq))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(message)
    }

    async fn messages(&self, room: RoomId, range: SeqRange) -> StoreResult<Vec<Message>> {
        let sql = [
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages \
                 WHERE room_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq ASC LIMIT $4"
            ),
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages \
                 WHERE room_id = $1 AND seq > $2 AND seq < $3 ORDER BY seq DESC LIMIT $4"
            ),
        ];
        self.seq_page(range, sql, |query| query.bind(room.0)).await
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<Message>> {
        // Each term a prefix (`:*`), quoted as a tsquery lexeme.
        let tsquery = query
            .terms
            .iter()
            .map(|term| format!("'{}':*", term.replace('\\', "\\\\").replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(" & ");
        let run = |sql: &'static str| {
            sqlx::query(sql)
                .bind(tsquery.clone())
                .bind(query.user.0)
                .bind(query.room.map(|room| room.0))
                .bind(query.before.map(|id| id.0))
                .bind(i64::from(query.limit))
                .fetch_all(&self.pool)
        };
        // Rare words: all the matches in the searcher's rooms, from the GIN index, then the
        // newest. Frequent words (more than SPARSE matches) would cost a heap read each: the
        // newest messages, read in id order, find the page's matches sooner.
        let rows = run(SEARCH_SPARSE).await.map_err(map_err)?;
        let dense = match rows.first() {
            Some(row) => codec::get::<i64>(row, "hits")? > SPARSE,
            None => false,
        };
        let rows = if dense {
            run(SEARCH_DENSE).await.map_err(map_err)?
        } else {
            rows
        };
        rows.iter().map(codec::message).collect()
    }

    async fn replace_unread_mentions(
        &self,
        seen: SeenCounters,
        mentions: &[Mention],
    ) -> StoreResult<bool> {
        let room = seen.room;
        let users: Vec<uuid::Uuid> = mentions.iter().map(|m| m.user.0).collect();
        let seqs: Vec<i64> = mentions.iter().map(|m| int(m.seq)).collect();
        let ids: Vec<uuid::Uuid> = mentions.iter().map(|m| m.message.0).collect();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if !counters_are(&mut tx, room, seen.counters).await? {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM mentions AS x WHERE room_id = $1 AND seq > coalesce( \
               (SELECT last_read_seq FROM members \
                WHERE room_id = $1 AND user_id = x.user_id), -1)",
        )
        .bind(room.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO mentions (user_id, room_id, seq, message_id) \
             SELECT u, $1, s, m FROM unnest($2::uuid[], $3::bigint[], $4::uuid[]) AS x (u, s, m) \
             ON CONFLICT DO NOTHING",
        )
        .bind(room.0)
        .bind(users)
        .bind(seqs)
        .bind(ids)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn mentions_between(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<Mention>> {
        let rows = sqlx::query(
            "SELECT user_id, seq, message_id FROM mentions \
             WHERE room_id = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq, user_id",
        )
        .bind(room.0)
        .bind(int(*seqs.start()))
        .bind(int(*seqs.end()))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| {
                Ok(Mention {
                    user: UserId(get(row, "user_id")?),
                    seq: uint(get(row, "seq")?)?,
                    message: MessageId(get(row, "message_id")?),
                })
            })
            .collect()
    }

    async fn mentions(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM mentions AS x JOIN messages USING (room_id, seq) \
             WHERE x.user_id = $1 AND x.message_id < $2 ORDER BY x.message_id DESC LIMIT $3"
        );
        sqlx::query(sql)
            .bind(user.0)
            .bind(before.map_or(uuid::Uuid::max(), |id| id.0))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::message)
            .collect()
    }

    async fn changes(&self, room: RoomId, after: u64, limit: u32) -> StoreResult<Vec<Message>> {
        let sql = concat!(
            "SELECT ",
            message_columns!(),
            " FROM messages \
             WHERE room_id = $1 AND change_id > $2 ORDER BY change_id LIMIT $3"
        );
        sqlx::query(sql)
            .bind(room.0)
            .bind(int(after))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::message)
            .collect()
    }
}
