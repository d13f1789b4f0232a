//! Message search: an FTS5 index of messages' terms ([`chat_core::search::terms`]), kept
//! behind the sends.
//!
//! A send writes its message and its row of `search_rows` (which message a search row is),
//! nothing more: splitting text and writing FTS5 (a segment per commit that changes it) cost
//! too much per send. Every [`INDEX_EVERY`] search rows, the writer indexes the messages past
//! `search_progress.indexed` together ([`index_new`]); search reads the index, and splits the
//! bodies of the few messages not in it yet itself. Edits and deletions of indexed messages
//! reach the index at once ([`reindex`]); a message not indexed yet is indexed as it then is.

use chat_core::store::SearchQuery;
use chat_core::{Message, MessageId, StoreError};
use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::codec::{self, StoreResult, map_err, message_columns};

/// How many search rows the index may fall behind the sends before the writer catches it up:
/// the fewer, the more segments FTS5 writes (and merges); the more, the more bodies each
/// search splits.
const INDEX_EVERY: i64 = 1024;

/// How many messages [`index_new`] reads at a time, bounding its memory (a page of the longest
/// bodies the default configuration allows is 64 MiB; of the usual, a few hundred KiB).
const INDEX_PAGE: i64 = INDEX_EVERY;

/// The search row the next message's follows: after the highest given and after every row
/// the index has passed (a row freed by deleting a room must not be given again below it,
/// where it would count as indexed).
macro_rules! last_search_row {
    () => {
        "(SELECT max(indexed, coalesce((SELECT max(search_row) FROM search_rows), 0)) \
          FROM search_progress)"
    };
}
pub(crate) use last_search_row;

/// Whether the search rows numbered after `after`, up to `last`, bring the index due.
pub(crate) fn index_due(after: i64, last: i64) -> bool {
    last.div_euclid(INDEX_EVERY) > after.div_euclid(INDEX_EVERY)
}

/// The body's search terms as the index takes them: space-separated, `None` for none.
pub(crate) fn search_terms(body: &str) -> Option<String> {
    let terms = chat_core::search::terms(body);
    (!terms.is_empty()).then(|| terms.join(" "))
}

/// Gives the index a message's new terms, or takes it out of the index (`None`: a tombstone,
/// or no words), if it is indexed; one not indexed yet needs nothing.
pub(crate) async fn reindex(
    c: &mut SqliteConnection,
    id: MessageId,
    terms: Option<String>,
) -> StoreResult<()> {
    let row: Option<i64> = sqlx::query_scalar(
        "SELECT m.search_row FROM messages AS m, search_progress AS p \
         WHERE m.id = ? AND m.search_row <= p.indexed",
    )
    .bind(id.0)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    let Some(row) = row else { return Ok(()) };
    let change = match terms {
        Some(terms) => {
            sqlx::query("INSERT OR REPLACE INTO search_index (rowid, terms) VALUES (?, ?)")
                .bind(row)
                .bind(terms)
        }
        None => sqlx::query("DELETE FROM search_index WHERE rowid = ?").bind(row),
    };
    change.execute(c).await.map_err(map_err)?;
    Ok(())
}

/// Indexes every message past `search_progress.indexed`, as it now is, and moves the mark to
/// the last. The caller holds a write transaction.
pub(crate) async fn index_new(c: &mut SqliteConnection) -> StoreResult<()> {
    loop {
        // One row of JSON, not a row per message: rows cost more than the text. `LEFT JOIN`:
        // the mark passes a row whatever it finds.
        let rows: String = sqlx::query_scalar(
            "SELECT json_group_array(json_array(search_row, body)) FROM ( \
                 SELECT r.search_row, CASE WHEN m.deleted_at IS NULL THEN m.body END AS body \
                 FROM search_rows AS r \
                 LEFT JOIN messages AS m ON m.room_id = r.room_id AND m.seq = r.seq \
                 WHERE r.search_row > (SELECT indexed FROM search_progress) \
                 ORDER BY r.search_row LIMIT ?)",
        )
        .bind(INDEX_PAGE)
        .fetch_one(&mut *c)
        .await
        .map_err(map_err)?;
        let mut rows: Vec<(i64, Option<String>)> =
            serde_json::from_str(&rows).map_err(StoreError::backend)?;
        rows.sort_unstable_by_key(|(row, _)| *row);
        let Some(&(first, _)) = rows.first() else {
            return Ok(());
        };
        // The terms of rows `first..=last` as one array of strings, `null` for none and for a
        // number freed by a deleted room: FTS5's insert reads it in a quarter of the time it
        // takes to pick each row's number and terms out of an array of pairs. A page ends
        // before a wide gap, so that the array stays short.
        let widest = 2 * rows.len();
        let mut terms: Vec<Option<String>> = Vec::with_capacity(rows.len());
        let mut last = first;
        for (row, body) in rows {
            let place = usize::try_from(row - first).map_err(StoreError::backend)?;
            if place >= widest {
                break;
            }
            terms.resize(place, None);
            terms.push(body.as_deref().and_then(search_terms));
            last = row;
        }
        let terms = serde_json::to_string(&terms).map_err(StoreError::backend)?;
        sqlx::query(
            "INSERT OR REPLACE INTO search_index (rowid, terms) \
             SELECT ?2 + key, value FROM json_each(?1) WHERE value IS NOT NULL",
        )
        .bind(terms)
        .bind(first)
        .execute(&mut *c)
        .await
        .map_err(map_err)?;
        sqlx::query("UPDATE search_progress SET indexed = ?")
            .bind(last)
            .execute(&mut *c)
            .await
            .map_err(map_err)?;
    }
}

/// Whether the search row `r` (of `search_rows`) may be found by the search's user (`?2`), in
/// its room (`?3`, if given), before its cursor (`?4`, a message id, if given).
macro_rules! searchable {
    () => {
        "r.room_id IN (SELECT room_id FROM members \
                       WHERE user_id = ?2 AND (?3 IS NULL OR room_id = ?3)) \
         AND r.search_row < \
             coalesce((SELECT search_row FROM messages WHERE id = ?4), 9223372036854775807)"
    };
}

/// The newest messages the query finds, newest first.
pub(crate) async fn search(readers: &SqlitePool, query: &SearchQuery) -> StoreResult<Vec<Message>> {
    // Each term a quoted prefix (terms hold no quotes; doubled all the same).
    let expression = query
        .terms
        .iter()
        .map(|term| format!("\"{}\"*", term.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ");
    // One statement, so one snapshot: the newest matches in the index, after every message
    // not in it yet (which come after all those in it), then their messages.
    let sql = concat!(
        "SELECT ",
        message_columns!(),
        ", waiting FROM ( \
             SELECT r.search_row AS found, r.room_id AS found_room, r.seq AS found_seq, \
                    1 AS waiting \
             FROM search_rows AS r \
             WHERE r.search_row > (SELECT indexed FROM search_progress) AND ",
        searchable!(),
        "  UNION ALL \
           SELECT * FROM ( \
             SELECT r.search_row, r.room_id, r.seq, 0 \
             FROM search_index AS f JOIN search_rows AS r ON r.search_row = f.rowid \
             WHERE search_index MATCH ?1 AND ",
        searchable!(),
        "    ORDER BY f.rowid DESC LIMIT ?5)) \
         JOIN messages ON messages.room_id = found_room AND messages.seq = found_seq \
         ORDER BY found DESC"
    );
    let rows = sqlx::query(sql)
        .bind(expression)
        .bind(query.user.0)
        .bind(query.room.map(|room| room.0))
        .bind(query.before.map(|id| id.0))
        .bind(i64::from(query.limit))
        .fetch_all(readers)
        .await
        .map_err(map_err)?;
    let mut found = Vec::new();
    for row in &rows {
        let message = codec::message(row)?;
        let waiting: bool = row.try_get("waiting").map_err(map_err)?;
        if waiting
            && (message.is_deleted()
                || !chat_core::search::matches(
                    &chat_core::search::terms(&message.body),
                    &query.terms,
                ))
        {
            continue;
        }
        found.push(message);
        if found.len() == usize::try_from(query.limit).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(found)
}
