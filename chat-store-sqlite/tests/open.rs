//! Opening files: what is ours is reopened with its data, what is not is refused untouched.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;

use chat_core::store::UserStore;
use chat_core::testing::{assert_incompatible, sample_user};
use chat_core::{
    Chat, Message, NewMessage, NewRoom, NewUser, OpenError, RoomId, User, UserId, search,
};
use chat_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use sqlx::{ConnectOptions, Connection};

#[tokio::test]
async fn data_survives_closing_and_reopening_by_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let url = format!("sqlite://{}", path.display());
    let alice = sample_user("alice");
    let store = SqliteStore::open(&url).await.unwrap();
    store.insert_user(&alice, Some("$hash")).await.unwrap();
    store.close().await;
    assert!(path.exists(), "the file is created on open");

    let options = SqliteOptions::new(&url)
        .unwrap()
        .durability(Durability::Normal);
    let store = SqliteStore::open_with(options).await.unwrap();
    assert_eq!(store.user(alice.id).await.unwrap(), Some(alice.clone()));
    assert_eq!(
        store.password_hash(alice.id).await.unwrap().as_deref(),
        Some("$hash")
    );
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let content = b"these are my notes, not a database\n".repeat(100);
    std::fs::write(&path, &content).unwrap();
    assert_incompatible(
        SqliteStore::open(&path.to_string_lossy()).await,
        "not a SQLite database",
    );
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

#[tokio::test]
async fn another_applications_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let mut other = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::query("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        .execute(&mut other)
        .await
        .unwrap();
    other.close().await.unwrap();
    let before = std::fs::read(&path).unwrap();
    assert_incompatible(
        SqliteStore::open(&path.to_string_lossy()).await,
        "not a chat database",
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path.to_string_lossy()).await.unwrap();
    store.close().await;
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Delete)
        .connect()
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', 1, x'00', 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
    let before = std::fs::read(&path).unwrap();
    assert_incompatible(SqliteStore::open(&path.to_string_lossy()).await, "newer");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[tokio::test]
async fn memory_urls_are_refused() {
    for location in ["sqlite::memory:", "sqlite://", ""] {
        assert!(matches!(
            SqliteStore::open(location).await,
            Err(OpenError::BadLocation(_))
        ));
    }
}

#[tokio::test]
async fn rows_from_before_folded_search_are_found_after_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let url = format!("sqlite://{}", path.display());
    let mut edith = sample_user("edith");
    edith.display_name = "Édith".into();
    let store = SqliteStore::open(&url).await.unwrap();
    store.insert_user(&edith, None).await.unwrap();
    store.close().await;
    // As a database written before migration 3 left it: no folded copy.
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .connect()
        .await
        .unwrap();
    sqlx::query("UPDATE users SET search = NULL")
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();

    let store = SqliteStore::open(&url).await.unwrap();
    let query = chat_core::store::UserQuery {
        search: Some("édith".into()),
        after_username: None,
        limit: 10,
    };
    let found = store.list_users(&query).await.unwrap();
    assert_eq!(found.iter().map(|u| u.id).collect::<Vec<_>>(), [edith.id]);
}

/// A fresh SQLite file where alice sent `texts` to two rooms of hers named `names`, one after
/// the other (so that the index must keep messages newest first across rooms).
struct Written {
    store: Arc<SqliteStore>,
    chat: Chat,
    file: File,
}

/// The file of [`Written`], and what was written to it.
struct File {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    url: String,
    alice: User,
    rooms: Vec<RoomId>,
    sent: Vec<Message>,
}

impl Written {
    /// The engine, its user, the two rooms and what was sent, for the test's own steps.
    fn parts(&self) -> (&Chat, UserId, &[RoomId], &[Message]) {
        let file = &self.file;
        (&self.chat, file.alice.id, &file.rooms, &file.sent)
    }

    async fn new(names: [&str; 2], texts: impl IntoIterator<Item = String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chat.db");
        let url = format!("sqlite://{}", path.display());
        let store = Arc::new(SqliteStore::open(&url).await.unwrap());
        let chat = Chat::new(store.clone());
        let alice = chat.create_user(NewUser::named("alice")).await.unwrap();
        let mut rooms = Vec::new();
        for name in names {
            let room = chat.create_room(alice.id, NewRoom::named(name));
            rooms.push(room.await.unwrap().id);
        }
        let mut sent = Vec::new();
        for (n, text) in texts.into_iter().enumerate() {
            let text = NewMessage::text(text);
            sent.push(
                chat.send(alice.id, rooms[n % 2], text)
                    .await
                    .unwrap()
                    .message,
            );
        }
        let file = File {
            _dir: dir,
            path,
            url,
            alice,
            rooms,
            sent,
        };
        Self { store, chat, file }
    }

    /// Closes the store, so that raw SQL can run on the file.
    async fn close(self) -> File {
        drop(self.chat);
        Arc::into_inner(self.store).unwrap().close().await;
        self.file
    }
}

impl File {
    /// An engine on the file, opened again.
    async fn reopen(&self) -> Chat {
        Chat::new(Arc::new(SqliteStore::open(&self.url).await.unwrap()))
    }
}

#[tokio::test]
async fn messages_from_before_search_are_found_after_reopening() {
    let texts = (0..4).map(|n| format!("written before the search index {n}"));
    let file = Written::new(["old", "older"], texts).await.close().await;
    // As before migration 8: no search row, nothing in the index.
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&file.path)
        .connect()
        .await
        .unwrap();
    for sql in [
        "DELETE FROM search_index",
        "DELETE FROM search_rows",
        "UPDATE search_progress SET indexed = 0",
        "UPDATE messages SET search_row = NULL",
    ] {
        sqlx::query(sql).execute(&mut raw).await.unwrap();
    }
    raw.close().await.unwrap();

    let chat = file.reopen().await;
    let found = chat.search(file.alice.id, "index", None, None, None);
    let found: Vec<_> = found.await.unwrap().items.iter().map(|m| m.id).collect();
    let newest_first: Vec<_> = file.sent.iter().rev().map(|m| m.id).collect();
    assert_eq!(found, newest_first);
    assert_search_index_in_step(&file.path).await;
}

/// The index holds each live message's terms under its search row, once, for every search row
/// up to the mark of those indexed, and nothing else (after FTS5's own check of the index's
/// structure); the mark is fewer than 1024 rows behind the newest.
async fn assert_search_index_in_step(path: &std::path::Path) {
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap();
    for sql in [
        "INSERT INTO search_index (search_index) VALUES ('integrity-check')",
        "CREATE VIRTUAL TABLE temp.indexed USING fts5vocab(main, search_index, 'instance')",
    ] {
        sqlx::query(sql).execute(&mut raw).await.unwrap();
    }
    let mut indexed: Vec<(String, i64)> = sqlx::query_as("SELECT term, doc FROM temp.indexed")
        .fetch_all(&mut raw)
        .await
        .unwrap();
    let behind: i64 = sqlx::query_scalar(
        "SELECT coalesce(max(search_row), 0) - (SELECT indexed FROM search_progress) \
         FROM search_rows",
    )
    .fetch_one(&mut raw)
    .await
    .unwrap();
    assert!(behind < 1024, "the index is {behind} rows behind");
    // Each live message indexed, through its row of `search_rows`.
    let live: Vec<(String, i64)> = sqlx::query_as(
        "SELECT body, search_row FROM messages JOIN search_rows USING (room_id, seq, search_row) \
         WHERE deleted_at IS NULL AND search_row <= (SELECT indexed FROM search_progress)",
    )
    .fetch_all(&mut raw)
    .await
    .unwrap();
    raw.close().await.unwrap();
    let mut expected: Vec<(String, i64)> = live
        .iter()
        .flat_map(|(body, row)| search::terms(body).into_iter().map(|term| (term, *row)))
        .collect();
    for pairs in [&mut indexed, &mut expected] {
        pairs.sort();
        pairs.dedup();
    }
    assert_eq!(indexed, expected);
}

#[tokio::test]
async fn the_search_index_follows_edits_deletions_and_deleted_rooms() {
    let texts = (0..6).map(|n| format!("Café número {n} 東京タワー"));
    let written = Written::new(["kept", "deleted"], texts).await;
    let (chat, alice, rooms, sent) = written.parts();
    chat.edit_message(alice, rooms[0], sent[0].id, "an edited café")
        .await
        .unwrap();
    chat.delete_message(alice, rooms[0], sent[2].id)
        .await
        .unwrap();
    chat.delete_room(alice, rooms[1]).await.unwrap();
    let file = written.close().await;

    assert_search_index_in_step(&file.path).await;
    let chat = file.reopen().await;
    let found = chat.search(file.alice.id, "cafe", None, None, None);
    let found: Vec<_> = found.await.unwrap().items.iter().map(|m| m.id).collect();
    assert_eq!(found, [file.sent[4].id, file.sent[0].id]);
}

#[tokio::test]
async fn a_search_index_of_migration_8_is_carried_over() {
    // Each message's terms in its row, and an index whose triggers read them.
    carried_over(8, "messages").await;
}

#[tokio::test]
async fn a_search_index_of_migration_9_is_carried_over() {
    // Sent as migration 9 sent: terms through a view, waiting for the index in a table.
    carried_over(9, "message_appends").await;
}

/// Writes the same messages to a file as migration `version` left it (inserted `into` a table
/// or view that takes their terms), opens it, and searches it.
async fn carried_over(version: i64, into: &str) {
    let texts = ["Café número uno", "🙂", "東京タワー café", "the last café"].map(String::from);
    let written = Written::new(["kept", "other"], texts).await;
    let file = written.close().await;
    let old = file.path.with_file_name("old.db");
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&old)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    sqlx::migrate!().run_to(version, &mut raw).await.unwrap();
    sqlx::query("ATTACH ? AS new")
        .bind(file.path.to_string_lossy())
        .execute(&mut raw)
        .await
        .unwrap();
    for sql in [
        "INSERT INTO users SELECT * FROM new.users",
        "INSERT INTO rooms SELECT * FROM new.rooms",
        "INSERT INTO members SELECT * FROM new.members",
    ] {
        sqlx::query(sql).execute(&mut raw).await.unwrap();
    }
    let insert = format!(
        "INSERT INTO {into} (room_id, seq, id, sender, body, created_at, change_id, \
                             search_row, terms) \
         SELECT room_id, seq, id, sender, body, created_at, change_id, search_row, ?2 \
         FROM new.messages WHERE id = ?1"
    );
    for message in &file.sent {
        let terms = search::terms(&message.body).join(" ");
        sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
            .bind(message.id.0)
            .bind((!terms.is_empty()).then_some(terms))
            .execute(&mut raw)
            .await
            .unwrap();
    }
    raw.close().await.unwrap();
    std::fs::rename(&old, &file.path).unwrap();

    let chat = file.reopen().await;
    let found = chat.search(file.alice.id, "cafe", None, None, None);
    let found: Vec<_> = found.await.unwrap().items.iter().map(|m| m.id).collect();
    assert_eq!(found, [file.sent[3].id, file.sent[2].id, file.sent[0].id]);
    drop(chat);
    assert_search_index_in_step(&file.path).await;
}

/// Every 1024th message brings the messages sent since the last into the index: search, edits
/// and deletions give the same answers on either side of that mark.
#[tokio::test]
async fn search_reads_the_index_and_the_messages_not_in_it_yet_as_one() {
    let texts = (0..1030).map(|n| format!("common word{n}"));
    let written = Written::new(["kept", "other"], texts).await;
    let (chat, alice, rooms, sent) = written.parts();
    // Messages 3 and 5 are in the index, 1027 and 1029 not yet.
    for n in [3, 1027] {
        let room = rooms[n % 2];
        chat.edit_message(alice, room, sent[n].id, "changed")
            .await
            .unwrap();
    }
    for n in [5, 1029] {
        let room = rooms[n % 2];
        chat.delete_message(alice, room, sent[n].id).await.unwrap();
    }
    // Every page of a search, as the numbers of the messages found.
    let found = |text: &'static str| async move {
        let (mut found, mut before) = (Vec::new(), None);
        loop {
            let page = chat.search(alice, text, None, before, Some(100));
            let page = page.await.unwrap();
            found.extend(
                page.items
                    .iter()
                    .map(|m| sent.iter().position(|s| s.id == m.id)),
            );
            match page.next_cursor {
                Some(cursor) => before = Some(cursor),
                None => return found,
            }
        }
    };
    assert_eq!(found("changed").await, [Some(1027), Some(3)]);
    let common: Vec<_> = (0..1030)
        .rev()
        .filter(|n| ![3, 5, 1027, 1029].contains(n))
        .map(Some)
        .collect();
    assert_eq!(found("common").await, common);
    assert_eq!(
        found("word102").await,
        [1028, 1026, 1025, 1024, 1023, 1022, 1021, 1020, 102].map(Some)
    );
    assert_search_index_in_step(&written.close().await.path).await;
}

/// Deleting the room of the newest messages frees their search rows; a message sent after it
/// must not be given one the index has passed, where search would take it for indexed.
#[tokio::test]
async fn a_message_sent_after_deleting_the_newest_room_is_found() {
    let texts = (0..1023).map(|n| format!("before {n}"));
    let written = Written::new(["kept", "deleted"], texts).await;
    let (chat, alice, rooms, _) = written.parts();
    let text = NewMessage::text("the 1024th brings the index due");
    chat.send(alice, rooms[1], text).await.unwrap();
    chat.delete_room(alice, rooms[1]).await.unwrap();
    let text = NewMessage::text("after the deletion");
    let after = chat.send(alice, rooms[0], text).await.unwrap().message;

    let found = chat.search(alice, "after", None, None, None).await.unwrap();
    assert_eq!(
        found.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        [after.id]
    );
    assert_search_index_in_step(&written.close().await.path).await;
}

/// A room deleted from the middle of the messages not indexed yet leaves a gap in their
/// search rows: the index takes the rows on either side under their own numbers.
#[tokio::test]
async fn the_index_takes_the_messages_on_either_side_of_a_deleted_room() {
    let written = Written::new(["kept", "deleted"], []).await;
    let (chat, alice, rooms, _) = written.parts();
    let send = |room: RoomId, text: String| async move {
        let text = NewMessage::text(text);
        chat.send(alice, room, text).await.unwrap().message
    };
    let mut kept = vec![send(rooms[0], "kept before".into()).await];
    for n in 0..1000 {
        send(rooms[1], format!("deleted {n}")).await;
    }
    kept.push(send(rooms[0], "kept after".into()).await);
    chat.delete_room(alice, rooms[1]).await.unwrap();
    // The 1024th search row brings the index due.
    for n in 0..22 {
        kept.push(send(rooms[0], format!("kept after {n}")).await);
    }

    let found = chat.search(alice, "kept", None, None, Some(100));
    let found: Vec<_> = found.await.unwrap().items.iter().map(|m| m.id).collect();
    let newest_first: Vec<_> = kept.iter().rev().map(|m| m.id).collect();
    assert_eq!(found, newest_first);
    assert_search_index_in_step(&written.close().await.path).await;
}

/// A due catch-up needs no write after it: the index is caught up while the store stays open
/// and idle.
#[tokio::test]
async fn an_idle_writer_catches_the_index_up_alone() {
    let texts = (0..1024).map(|n| format!("message {n}"));
    let written = Written::new(["kept", "other"], texts).await;
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&written.file.path)
        .read_only(true)
        .connect()
        .await
        .unwrap();
    let mut indexed = 0;
    for _ in 0..100 {
        indexed = sqlx::query_scalar("SELECT indexed FROM search_progress")
            .fetch_one(&mut raw)
            .await
            .unwrap();
        if indexed == 1024 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(indexed, 1024);
    raw.close().await.unwrap();
}
