//! Message search: an FTS5 index of messages' terms ([`chat_core::search::terms`]), kept
//! behind the sends.
//!
//! A send writes its message and its row of `search_rows` (which message a search row is),
//! nothing more: splitting text and writing FTS5 (a segment per commit that changes it) cost
//! too much per send. Every [`INDEX_EVERY`] search rows, a read connection reads the messages
//! past `search_progress.indexed` and splits their terms ([`prepare`]), and the writer writes
//! them into the index together ([`index_prepared`]); search reads the index, and splits the
//! bodies of the few messages not in it yet itself. Edits and deletions of indexed messages
//! reach the index at once ([`reindex`]); a message not indexed yet is indexed as it then is.

use chat_core::store::SearchQuery;
use chat_core::{Message, MessageId, StoreError};
use sqlx::{Row, SqliteConnection, SqliteExecutor, SqlitePool};

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
/// or no words), if it is indexed. One not indexed yet is indexed as it then is; the change is
/// counted, as a catch-up prepared before it may hold its old terms ([`index_prepared`]).
pub(crate) async fn reindex(
    c: &mut SqliteConnection,
    id: MessageId,
    terms: Option<String>,
) -> StoreResult<()> {
    let row: Option<(Option<i64>, i64)> = sqlx::query_as(
        "SELECT m.search_row, p.indexed FROM messages AS m, search_progress AS p WHERE m.id = ?",
    )
    .bind(id.0)
    .fetch_optional(&mut *c)
    .await
    .map_err(map_err)?;
    let Some((Some(row), indexed)) = row else {
        return Ok(());
    };
    let change = if row > indexed {
        sqlx::query("UPDATE search_progress SET changed = changed + 1")
    } else {
        match terms {
            Some(terms) => {
                sqlx::query("INSERT OR REPLACE INTO search_index (rowid, terms) VALUES (?, ?)")
                    .bind(row)
                    .bind(terms)
            }
            None => sqlx::query("DELETE FROM search_index WHERE rowid = ?").bind(row),
        }
    };
    change.execute(c).await.map_err(map_err)?;
    Ok(())
}

/// A page of the messages past the mark, read and split, ready for the index.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The mark and the count of changes past it when the page was read: if either has moved
    /// since, the page may be stale.
    indexed: i64,
    changed: i64,
    /// Its first and last search rows.
    first: i64,
    last: i64,
    /// The terms of rows `first..=last` as one JSON array of strings, `null` for none and for a
    /// number freed by a deleted room: FTS5's insert reads it in a quarter of the time it takes
    /// to pick each row's number and terms out of an array of pairs.
    terms: String,
    /// Whether messages past `last` were left for the next page.
    pub(crate) more: bool,
}

/// Reads the next page of messages past the mark and splits their terms, on any connection:
/// `None` when the index lacks nothing.
pub(crate) async fn prepare<'c>(c: impl SqliteExecutor<'c>) -> StoreResult<Option<Prepared>> {
    // One statement, so one snapshot. The bodies as one row of JSON, not a row each: rows cost
    // more than the text. `LEFT JOIN`: the mark passes a row whatever it finds.
    let (indexed, changed, rows): (i64, i64, String) = sqlx::query_as(
        "SELECT indexed, changed, ( \
             SELECT json_group_array(json_array(search_row, body)) FROM ( \
                 SELECT r.search_row, CASE WHEN m.deleted_at IS NULL THEN m.body END AS body \
                 FROM search_rows AS r \
                 LEFT JOIN messages AS m ON m.room_id = r.room_id AND m.seq = r.seq \
                 WHERE r.search_row > (SELECT indexed FROM search_progress) \
                 ORDER BY r.search_row LIMIT ?)) \
         FROM search_progress",
    )
    .bind(INDEX_PAGE)
    .fetch_one(c)
    .await
    .map_err(map_err)?;
    // Up to a page of the longest bodies to split: off the async workers, which serve every
    // other request meanwhile.
    tokio::task::spawn_blocking(move || split(indexed, changed, &rows))
        .await
        .map_err(StoreError::backend)?
}

/// The page of `rows` (the JSON [`prepare`] read), its terms split.
fn split(indexed: i64, changed: i64, rows: &str) -> StoreResult<Option<Prepared>> {
    let mut rows: Vec<(i64, Option<String>)> =
        serde_json::from_str(rows).map_err(StoreError::backend)?;
    let mut more = rows.len() == usize::try_from(INDEX_PAGE).map_err(StoreError::backend)?;
    rows.sort_unstable_by_key(|(row, _)| *row);
    let Some(&(first, _)) = rows.first() else {
        return Ok(None);
    };
    // A page ends before a wide gap, so that the array stays short.
    let widest = 2 * rows.len();
    let mut terms: Vec<Option<String>> = Vec::with_capacity(rows.len());
    let mut last = first;
    for (row, body) in rows {
        let place = usize::try_from(row - first).map_err(StoreError::backend)?;
        if place >= widest {
            more = true;
            break;
        }
        terms.resize(place, None);
        terms.push(body.as_deref().and_then(search_terms));
        last = row;
    }
    Ok(Some(Prepared {
        indexed,
        changed,
        first,
        last,
        terms: serde_json::to_string(&terms).map_err(StoreError::backend)?,
        more,
    }))
}

/// Writes a page into the index and moves the mark past it. The caller holds a write
/// transaction.
async fn write(c: &mut SqliteConnection, page: &Prepared) -> StoreResult<()> {
    // A plain `INSERT`: no row past the mark is in the index (`OR REPLACE` would look each up).
    sqlx::query(
        "INSERT INTO search_index (rowid, terms) \
         SELECT ?2 + key, value FROM json_each(?1) WHERE value IS NOT NULL",
    )
    .bind(&page.terms)
    .bind(page.first)
    .execute(&mut *c)
    .await
    .map_err(map_err)?;
    sqlx::query("UPDATE search_progress SET indexed = ?")
        .bind(page.last)
        .execute(&mut *c)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Indexes every message past the mark, as it now is, and moves the mark to the last. The
/// caller holds a write transaction.
pub(crate) async fn index_new(c: &mut SqliteConnection) -> StoreResult<()> {
    while let Some(page) = prepare(&mut *c).await? {
        write(c, &page).await?;
    }
    Ok(())
}

/// Writes a page a reader prepared, if nothing it read has changed since (the mark has not
/// moved and no message past it was edited or deleted); indexes afresh otherwise. The caller
/// holds a write transaction.
pub(crate) async fn index_prepared(c: &mut SqliteConnection, page: Prepared) -> StoreResult<()> {
    let now: (i64, i64) = sqlx::query_as("SELECT indexed, changed FROM search_progress")
        .fetch_one(&mut *c)
        .await
        .map_err(map_err)?;
    if now == (page.indexed, page.changed) {
        write(c, &page).await
    } else {
        index_new(c).await
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

    use std::sync::Arc;

    use chat_core::store::NewStoredMessage;
    use chat_core::{Chat, MessageId, NewMessage, NewRoom, NewUser};
    use sqlx::{ConnectOptions, Connection, SqliteConnection};

    use super::{index_new, index_prepared, prepare};
    use crate::SqliteStore;
    use crate::messages::{Append, append_all};

    /// A connection of its own to the store's file, beside the store's.
    async fn connect(path: &std::path::Path) -> SqliteConnection {
        let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
        options.connect().await.unwrap()
    }

    /// The search rows the index holds and their terms, sorted.
    async fn indexed(c: &mut SqliteConnection) -> Vec<(i64, String)> {
        sqlx::query(
            "CREATE VIRTUAL TABLE IF NOT EXISTS temp.indexed \
             USING fts5vocab(main, search_index, 'instance')",
        )
        .execute(&mut *c)
        .await
        .unwrap();
        sqlx::query_as("SELECT doc, term FROM temp.indexed ORDER BY doc, term")
            .fetch_all(c)
            .await
            .unwrap()
    }

    /// Sends three messages to each of two rooms, prepares the index's page of them on a
    /// connection of its own, lets `meanwhile` change what it read, then writes the page, and
    /// returns what the index then holds, with the search rows of the messages still there.
    async fn prepared_then<F>(meanwhile: F) -> (Vec<(i64, String)>, Vec<(i64, String)>)
    where
        F: AsyncFnOnce(&Chat, chat_core::UserId, &[chat_core::Message]),
    {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let store = Arc::new(SqliteStore::open(&path.to_string_lossy()).await.unwrap());
        let chat = Chat::new(store.clone());
        let alice = chat.create_user(NewUser::named("alice")).await.unwrap();
        let mut rooms = Vec::new();
        for name in ["kept", "gone"] {
            let room = chat.create_room(alice.id, NewRoom::named(name)).await;
            rooms.push(room.unwrap().id);
        }
        let mut sent = Vec::new();
        for n in 0..6 {
            let text = NewMessage::text(format!("first{n}"));
            sent.push(
                chat.send(alice.id, rooms[n % 2], text)
                    .await
                    .unwrap()
                    .message,
            );
        }
        let mut raw = connect(&path).await;
        let page = prepare(&mut raw).await.unwrap().unwrap();
        meanwhile(&chat, alice.id, &sent).await;
        let mut tx = raw.begin().await.unwrap();
        index_prepared(&mut tx, page).await.unwrap();
        tx.commit().await.unwrap();
        let live = sqlx::query_as(
            "SELECT search_row, body FROM messages JOIN search_rows USING (room_id, seq, search_row) \
             WHERE deleted_at IS NULL ORDER BY search_row",
        )
        .fetch_all(&mut raw)
        .await
        .unwrap();
        (indexed(&mut raw).await, live)
    }

    /// An append refused in the middle of a batch leaves a gap in the batch's search rows: the
    /// index falls due all the same when the gap holds the 1024th, and passes over it.
    #[tokio::test]
    async fn a_refused_append_leaves_a_gap_in_the_search_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let store = SqliteStore::open(&path.to_string_lossy()).await.unwrap();
        let chat = Chat::new(Arc::new(store));
        let alice = chat.create_user(NewUser::named("alice")).await.unwrap().id;
        let outsider = chat.create_user(NewUser::named("bob")).await.unwrap().id;
        let room = chat.create_room(alice, NewRoom::named("room")).await;
        let room = room.unwrap().id;
        let mut raw = connect(&path).await;
        // As if 1022 search rows had been given and indexed.
        sqlx::query("UPDATE search_progress SET indexed = 1022")
            .execute(&mut raw)
            .await
            .unwrap();
        let append = |sender, body: &str| Append {
            new: NewStoredMessage::text(
                MessageId(uuid::Uuid::now_v7()),
                room,
                sender,
                body.to_owned(),
                chrono::Utc::now(),
            ),
            metadata: None,
            mentions: None,
        };
        let batch = [
            append(alice, "first"),
            append(outsider, "refused"),
            append(alice, "third"),
        ];
        let mut due = false;
        let sent = append_all(&mut raw, &batch, &mut due).await;
        let kept: Vec<_> = sent.iter().map(Result::is_ok).collect();
        assert_eq!(kept, [true, false, true]);
        assert!(due, "search rows 1023 to 1025 hold the 1024th");
        let rows: Vec<i64> = sqlx::query_scalar("SELECT search_row FROM search_rows")
            .fetch_all(&mut raw)
            .await
            .unwrap();
        assert_eq!(rows, [1023, 1025]);
        index_new(&mut raw).await.unwrap();
        let expected = [(1023, "first".to_owned()), (1025, "third".to_owned())];
        assert_eq!(indexed(&mut raw).await, expected);
    }

    #[tokio::test]
    async fn a_page_prepared_before_an_edit_is_not_written() {
        let (indexed, live) = prepared_then(async |chat, alice, sent| {
            let first = &sent[0];
            chat.edit_message(alice, first.room_id, first.id, "edited")
                .await
                .unwrap();
            chat.delete_message(alice, sent[1].room_id, sent[1].id)
                .await
                .unwrap();
        })
        .await;
        assert_eq!(indexed, live, "the index holds each live message's text");
        assert_eq!(live[0].1, "edited");
    }

    #[tokio::test]
    async fn a_page_prepared_before_its_room_was_deleted_is_not_written() {
        let (indexed, live) = prepared_then(async |chat, alice, sent| {
            chat.delete_room(alice, sent[1].room_id).await.unwrap();
        })
        .await;
        assert_eq!(indexed, live, "the index holds each live message's text");
        assert_eq!(live.len(), 3);
    }

    #[tokio::test]
    async fn a_page_prepared_with_nothing_changed_since_is_written() {
        let (indexed, live) = prepared_then(async |_, _, _| {}).await;
        assert_eq!(indexed, live);
        assert_eq!(live.len(), 6);
    }
}
