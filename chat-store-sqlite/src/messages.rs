//! Messages: appends with sequence allocation, edits, tombstones, pages and changes.

use std::collections::HashMap;
use std::ops::RangeInclusive;

use async_trait::async_trait;
use chat_core::store::{
    Mention, MessageStore, NewStoredMessage, SearchQuery, SeenCounters, SeqRange,
};
use chat_core::{Entity, Message, MessageId, RoomId, Sent, StoreError, UserId};
use chrono::{DateTime, Utc};

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::SqliteStore;
use crate::codec::{
    self, StoreResult, get, int, map_err, message_columns, metadata_json, micros, uint,
};
use crate::rooms::counters_are;
use crate::search::{self, last_search_row, reindex, search_terms};

/// Sets the new change cursor of a message, and whatever else `$set` says; see
/// [`change_message`].
macro_rules! set_change {
    ($($set:literal)?) => {
        concat!(
            "UPDATE messages SET ",
            $($set, ", ",)?
            "change_id = \
             (SELECT last_change + 1 FROM rooms WHERE rooms.id = messages.room_id) \
             WHERE id = ? AND deleted_at IS NULL RETURNING ",
            message_columns!()
        )
    };
}

/// An edit; [`reindex`] gives the index the new text.
const EDIT: &str = set_change!("body = ?, edited_at = ?");
/// A tombstone, which [`reindex`] takes out of the index.
const DELETE: &str = set_change!("body = '', metadata = NULL, deleted_at = ?");
/// A reaction's change: the message itself is as it was.
pub(crate) const TOUCH: &str = set_change!();

/// A statement with some of its parameters bound.
pub(crate) type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

/// Applies a change to a live message (`sql` is an `UPDATE messages` that sets the change and
/// the next change cursor, binds the message id last and returns the row) and moves the room's
/// change cursor along.
pub(crate) async fn change_message(
    c: &mut SqliteConnection,
    id: MessageId,
    sql: &'static str,
    bind: impl FnOnce(Query<'_>) -> Query<'_>,
) -> StoreResult<Message> {
    let message = bind(sqlx::query(sql))
        .bind(id.0)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?
        .map(|row| codec::message(&row))
        .transpose()?
        .ok_or(StoreError::NotFound(Entity::Message))?;
    sqlx::query("UPDATE rooms SET last_change = ? WHERE id = ?")
        .bind(int(message.change_id))
        .bind(message.room_id.0)
        .execute(c)
        .await
        .map_err(map_err)?;
    Ok(message)
}

/// A page of messages in sequence order, read by one of two statements that take what the page
/// is of first (bound by `scope`), then the bounds `seq > ?` and `seq < ?` and a limit: `up`
/// reads up from `range.after` (ascending), `down` down from `range.before` (descending, and
/// turned here).
pub(crate) async fn seq_page(
    readers: &SqlitePool,
    range: SeqRange,
    [up, down]: [&'static str; 2],
    scope: impl FnOnce(Query<'_>) -> Query<'_>,
) -> StoreResult<Vec<Message>> {
    let sql = if range.after.is_some() { up } else { down };
    let mut messages = scope(sqlx::query(sql))
        .bind(range.after.map_or(0, int))
        .bind(range.before.map_or(i64::MAX, int))
        .bind(i64::from(range.limit))
        .fetch_all(readers)
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

/// Of the users mentioned (`$mentions`, a JSON array of hex ids), those who are members of
/// `$room`, as a JSON array in the order given; `NULL` for none asked.
macro_rules! kept_mentions {
    ($mentions:literal, $room:literal) => {
        concat!(
            "CASE WHEN ",
            $mentions,
            " IS NULL THEN NULL ELSE \
             (SELECT json_group_array(j.value) FROM json_each(",
            $mentions,
            ") AS j \
              WHERE EXISTS (SELECT 1 FROM members \
                            WHERE room_id = ",
            $room,
            " AND user_id = unhex(j.value))) END"
        )
    };
}

/// Whether `$root` may start a thread in `$room`: a live message of it that is no reply in a
/// thread.
macro_rules! thread_root_ok {
    ($root:literal, $room:literal) => {
        concat!(
            "EXISTS (SELECT 1 FROM messages WHERE id = ",
            $root,
            " AND room_id = ",
            $room,
            " AND thread_root IS NULL AND deleted_at IS NULL)"
        )
    };
}

/// An append, if the room exists, the sender is a user and a member of it, and what it replies
/// to is a message of the room.
const APPEND: &str = concat!(
    "INSERT INTO messages (room_id, seq, id, sender, body, reply_to, txn_id, metadata, \
                           created_at, change_id, thread_root, mentions, mentions_room, \
                           search_row) \
     SELECT id, last_seq + 1, ?4, ?2, ?5, ?3, ?6, ?7, ?8, last_change + 1, ?11, ",
    kept_mentions!("?9", "?1"),
    ", ?10, ",
    last_search_row!(),
    " + 1 FROM rooms \
     WHERE id = ?1 \
       AND EXISTS (SELECT 1 FROM members WHERE room_id = ?1 AND user_id = ?2) \
       AND EXISTS (SELECT 1 FROM users WHERE id = ?2) \
       AND (?3 IS NULL OR EXISTS (SELECT 1 FROM messages WHERE id = ?3 AND room_id = ?1)) \
       AND (?11 IS NULL OR ",
    thread_root_ok!("?11", "?1"),
    ") RETURNING seq, change_id, mentions, search_row"
);

/// Why [`APPEND`] inserted nothing: the first of its checks that fails.
async fn refusal(c: &mut SqliteConnection, new: &NewStoredMessage) -> StoreError {
    let found = sqlx::query(
        "SELECT EXISTS (SELECT 1 FROM rooms WHERE id = ?1), \
                EXISTS (SELECT 1 FROM members WHERE room_id = ?1 AND user_id = ?2) \
                AND EXISTS (SELECT 1 FROM users WHERE id = ?2), \
                ?3 IS NULL OR EXISTS (SELECT 1 FROM messages WHERE id = ?3 AND room_id = ?1)",
    )
    .bind(new.room_id.0)
    .bind(new.sender.0)
    .bind(new.reply_to.map(|id| id.0))
    .fetch_one(c)
    .await
    .and_then(|row| {
        Ok((
            row.try_get::<bool, _>(0)?,
            row.try_get::<bool, _>(1)?,
            row.try_get::<bool, _>(2)?,
        ))
    });
    match found {
        Ok((false, _, _)) => StoreError::NotFound(Entity::Room),
        Ok((true, false, _)) => StoreError::NotFound(Entity::Member),
        Ok((true, true, false)) => StoreError::NotFound(Entity::Message),
        Ok((true, true, true)) => StoreError::NotFound(Entity::Thread),
        Err(error) => map_err(error),
    }
}

/// Whether an insert failed because the sender already used the transaction id.
fn is_txn_id_taken(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.is_unique_violation() && db.message().contains("messages.sender, messages.txn_id"))
}

/// The message a sender already sent with this transaction id.
async fn original(c: &mut SqliteConnection, new: &NewStoredMessage) -> StoreResult<Message> {
    let row = sqlx::query(concat!(
        "SELECT ",
        message_columns!(),
        " FROM messages WHERE sender = ? AND txn_id = ?"
    ))
    .bind(new.sender.0)
    .bind(&new.txn_id)
    .fetch_one(c)
    .await
    .map_err(map_err)?;
    codec::message(&row)
}

/// An append waiting for the writer, which runs the appends queued together in one statement
/// ([`append_all`]).
pub(crate) struct Append {
    pub(crate) new: NewStoredMessage,
    /// `new.metadata` as JSON text, encoded before the writer sees it.
    pub(crate) metadata: Option<String>,
    /// `new.mentions` as a JSON array of hex ids, likewise.
    pub(crate) mentions: Option<String>,
}

/// Runs [`APPEND`] for one message: the checks of the contract, then the next sequence number
/// and change cursor from the room row; the `messages_appended` trigger moves the counters and
/// the sender's read marker, and writes the message's row of `search_rows`. Sets `index_due`
/// if the message brings the search index due.
async fn append_one(
    c: &mut SqliteConnection,
    append: &Append,
    index_due: &mut bool,
) -> StoreResult<Sent> {
    let new = &append.new;
    let inserted = sqlx::query(APPEND)
        .bind(new.room_id.0)
        .bind(new.sender.0)
        .bind(new.reply_to.map(|id| id.0))
        .bind(new.id.0)
        .bind(&new.body)
        .bind(&new.txn_id)
        .bind(&append.metadata)
        .bind(micros(new.created_at))
        .bind(&append.mentions)
        .bind(new.mentions_room)
        .bind(new.thread_root.map(|id| id.0))
        .fetch_optional(&mut *c)
        .await;
    match inserted {
        Ok(Some(row)) => appended(new, &row, 0, index_due),
        Ok(None) => Err(refusal(c, new).await),
        Err(error) if is_txn_id_taken(&error) => original(c, new).await.map(|message| Sent {
            message,
            created: false,
        }),
        Err(error) => Err(map_err(error)),
    }
}

/// The message `new` became, from the `seq` and `change_id` its insert returned; sets
/// `index_due` if the search rows its statement numbered, up to this message's (`ord` places
/// after the first), bring the search index due.
fn appended(
    new: &NewStoredMessage,
    row: &SqliteRow,
    ord: i64,
    index_due: &mut bool,
) -> StoreResult<Sent> {
    let search_row: i64 = row.try_get("search_row").map_err(map_err)?;
    *index_due |= search::index_due(search_row - ord - 1, search_row);
    let seq: i64 = row.try_get("seq").map_err(map_err)?;
    let change: i64 = row.try_get("change_id").map_err(map_err)?;
    let mut message = new.stored_at(
        u64::try_from(seq).unwrap_or_default(),
        u64::try_from(change).unwrap_or_default(),
    );
    message.mentions = codec::user_ids(row.try_get("mentions").map_err(map_err)?)?;
    Ok(Sent {
        message,
        created: true,
    })
}

/// [`APPEND`] for many messages at once, given as one JSON array (one fixed statement whatever
/// the batch's size, so it is prepared once): each room's rows are numbered from the room's
/// counters as they were before the statement (the `MATERIALIZED` batch is read in full before
/// the first insert), in the order given; a row that fails a check is left out and takes no
/// number. Search rows follow the order given, each at its place in the batch: one left out
/// leaves a gap, which the index passes over, cheaper than numbering the rows kept (a second
/// window, ordered across rooms, costs about 5 % of the rate of 64 senders).
const APPEND_ALL: &str = concat!(
    "WITH batch AS MATERIALIZED ( \
        SELECT b.*, r.last_seq, r.last_change, ",
    last_search_row!(),
    " AS last_search_row FROM ( \
            SELECT j.key AS ord, unhex(j.value ->> 0) AS room_id, unhex(j.value ->> 1) AS sender, \
                   unhex(j.value ->> 2) AS reply_to, unhex(j.value ->> 3) AS id, \
                   j.value ->> 4 AS body, j.value ->> 5 AS txn_id, j.value ->> 6 AS metadata, \
                   j.value ->> 7 AS created_at, j.value ->> 8 AS mentions, \
                   j.value ->> 9 AS mentions_room, unhex(j.value ->> 10) AS thread_root \
            FROM json_each(?1) AS j) AS b \
        JOIN rooms AS r ON r.id = b.room_id \
        WHERE EXISTS (SELECT 1 FROM members WHERE room_id = b.room_id AND user_id = b.sender) \
          AND EXISTS (SELECT 1 FROM users WHERE id = b.sender) \
          AND (b.reply_to IS NULL OR EXISTS \
                (SELECT 1 FROM messages WHERE id = b.reply_to AND room_id = b.room_id)) \
          AND (b.thread_root IS NULL OR ",
    thread_root_ok!("b.thread_root", "b.room_id"),
    ")) \
    INSERT INTO messages (room_id, seq, id, sender, body, reply_to, txn_id, metadata, \
                          created_at, change_id, thread_root, mentions, mentions_room, \
                          search_row) \
    SELECT room_id, last_seq + row_number() OVER w, id, sender, body, reply_to, txn_id, \
           metadata, created_at, last_change + row_number() OVER w, thread_root, ",
    kept_mentions!("mentions", "room_id"),
    ", mentions_room, last_search_row + ord + 1 \
    FROM batch WINDOW w AS (PARTITION BY room_id ORDER BY ord) \
    ORDER BY ord \
    RETURNING id, seq, change_id, mentions, search_row"
);

/// Appends `appends` as if one after the other, in one statement when it can. A batch holding a
/// transaction id already used (a retry) fails as a whole and is run again one by one, which
/// also hands a repeat within the batch the original before it. A refused append is left out
/// of the statement and asked for its reason alone. Sets `index_due` if the appends bring the
/// search index due ([`search::prepare`]).
pub(crate) async fn append_all(
    c: &mut SqliteConnection,
    appends: &[Append],
    index_due: &mut bool,
) -> Vec<StoreResult<Sent>> {
    if let [append] = appends {
        return vec![append_one(c, append, index_due).await];
    }
    let rows: Vec<_> = appends
        .iter()
        .map(
            |Append {
                 new,
                 metadata,
                 mentions,
             }| {
                (
                    new.room_id.0.simple(),
                    new.sender.0.simple(),
                    new.reply_to.map(|id| id.0.simple()),
                    new.id.0.simple(),
                    &new.body,
                    &new.txn_id,
                    metadata,
                    micros(new.created_at),
                    mentions,
                    new.mentions_room,
                    new.thread_root.map(|id| id.0.simple()),
                )
            },
        )
        .collect();
    let inserted = match serde_json::to_string(&rows) {
        Ok(json) => sqlx::query(APPEND_ALL)
            .bind(json)
            .fetch_all(&mut *c)
            .await
            .ok(),
        Err(_) => None,
    };
    let Some(rows) = inserted else {
        // A repeated transaction id, or any other failure: the statement changed nothing, and
        // one by one each append meets its own fate (and a repeat finds its original).
        let mut sent = Vec::with_capacity(appends.len());
        for append in appends {
            sent.push(append_one(c, append, index_due).await);
        }
        return sent;
    };
    let numbered: HashMap<Uuid, &SqliteRow> = match rows
        .iter()
        .map(|row| Ok((row.try_get::<Uuid, _>("id")?, row)))
        .collect::<Result<_, sqlx::Error>>()
    {
        Ok(numbered) => numbered,
        Err(error) => {
            let error = error.to_string();
            return appends
                .iter()
                .map(|_| Err(StoreError::backend(error.clone())))
                .collect();
        }
    };
    let mut sent = Vec::with_capacity(appends.len());
    for (ord, Append { new, .. }) in (0..).zip(appends) {
        sent.push(match numbered.get(&new.id.0) {
            Some(row) => appended(new, row, ord, index_due),
            None => Err(refusal(c, new).await),
        });
    }
    sent
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append_message(&self, new: &NewStoredMessage) -> StoreResult<Sent> {
        let metadata = metadata_json(&new.metadata)?;
        self.writer
            .append(Append {
                new: new.clone(),
                metadata,
                mentions: codec::user_ids_json(&new.mentions),
            })
            .await
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let sql = concat!("SELECT ", message_columns!(), " FROM messages WHERE id = ?");
        sqlx::query(sql)
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?
            .map(|row| codec::message(&row))
            .transpose()
    }

    async fn edit_message(
        &self,
        id: MessageId,
        body: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Message> {
        let body = body.to_owned();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let terms = search_terms(&body);
                    let message =
                        change_message(c, id, EDIT, |query| query.bind(body).bind(micros(at)))
                            .await?;
                    reindex(c, id, terms).await?;
                    Ok(message)
                })
            })
            .await
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> StoreResult<Message> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let message =
                        change_message(c, id, DELETE, |query| query.bind(micros(at))).await?;
                    reindex(c, id, None).await?;
                    // A tombstone has no reactions and mentions no one.
                    for sql in [
                        "DELETE FROM reactions WHERE room_id = ? AND seq = ?",
                        "DELETE FROM mentions WHERE room_id = ? AND seq = ?",
                    ] {
                        sqlx::query(sql)
                            .bind(message.room_id.0)
                            .bind(int(message.seq))
                            .execute(&mut *c)
                            .await
                            .map_err(map_err)?;
                    }
                    Ok(message)
                })
            })
            .await
    }

    async fn messages(&self, room: RoomId, range: SeqRange) -> StoreResult<Vec<Message>> {
        let sql = [
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages \
                 WHERE room_id = ? AND seq > ? AND seq < ? ORDER BY seq ASC LIMIT ?"
            ),
            concat!(
                "SELECT ",
                message_columns!(),
                " FROM messages \
                 WHERE room_id = ? AND seq > ? AND seq < ? ORDER BY seq DESC LIMIT ?"
            ),
        ];
        seq_page(&self.readers, range, sql, |query| query.bind(room.0)).await
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<Message>> {
        search::search(&self.readers, query).await
    }

    async fn replace_unread_mentions(
        &self,
        seen: SeenCounters,
        mentions: &[Mention],
    ) -> StoreResult<bool> {
        let room = seen.room;
        let rows: Vec<_> = mentions
            .iter()
            .map(|m| (m.user.0.simple(), int(m.seq), m.message.0.simple()))
            .collect();
        let rows = serde_json::to_string(&rows).map_err(StoreError::backend)?;
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    if !counters_are(c, room, seen.counters).await? {
                        return Ok(false);
                    }
                    sqlx::query(
                        "DELETE FROM mentions WHERE room_id = ?1 AND seq > coalesce( \
                           (SELECT last_read_seq FROM members \
                            WHERE room_id = ?1 AND user_id = mentions.user_id), -1)",
                    )
                    .bind(room.0)
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    // A marker that moved since the recount keeps its rows: the same ones.
                    sqlx::query(
                        "INSERT OR IGNORE INTO mentions (user_id, room_id, seq, message_id) \
                         SELECT unhex(value ->> 0), ?1, value ->> 1, unhex(value ->> 2) \
                         FROM json_each(?2)",
                    )
                    .bind(room.0)
                    .bind(rows)
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    Ok(true)
                })
            })
            .await
    }

    async fn mentions_between(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<Mention>> {
        let rows = sqlx::query(
            "SELECT user_id, seq, message_id FROM mentions \
             WHERE room_id = ? AND seq BETWEEN ? AND ? ORDER BY seq, user_id",
        )
        .bind(room.0)
        .bind(int(*seqs.start()))
        .bind(int(*seqs.end()))
        .fetch_all(&self.readers)
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
        let before = before.map_or(Uuid::max(), |id| id.0);
        sqlx::query(crate::threads::MENTIONS)
            .bind(user.0)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
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
             WHERE room_id = ? AND change_id > ? ORDER BY change_id LIMIT ?"
        );
        sqlx::query(sql)
            .bind(room.0)
            .bind(int(after))
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::message)
            .collect()
    }
}
