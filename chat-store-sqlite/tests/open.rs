//! Opening files: what is ours is reopened with its data, what is not is refused untouched.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::sync::Arc;

use chat_core::store::UserStore;
use chat_core::testing::sample_user;
use chat_core::{Chat, Message, NewMessage, NewRoom, NewUser, OpenError, RoomId, User};
use chat_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use sqlx::{ConnectOptions, Connection};

fn assert_incompatible(result: Result<SqliteStore, OpenError>, why: &str) {
    match result {
        Err(OpenError::Incompatible(message)) => assert!(message.contains(why), "{message}"),
        Err(other) => panic!("expected Incompatible({why}), got {other:?}"),
        Ok(_) => panic!("expected Incompatible({why}), the store opened"),
    }
}

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
    // As before migration 8: no search row, no terms (the trigger takes them out of the index).
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&file.path)
        .connect()
        .await
        .unwrap();
    sqlx::query("UPDATE messages SET search_row = NULL, terms = NULL")
        .execute(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();

    let chat = file.reopen().await;
    let found = chat.search(file.alice.id, "index", None, None, None);
    let found: Vec<_> = found.await.unwrap().items.iter().map(|m| m.id).collect();
    let newest_first: Vec<_> = file.sent.iter().rev().map(|m| m.id).collect();
    assert_eq!(found, newest_first);
    search_index_is_in_step(&file.path).await.unwrap();
}

/// FTS5's own check, against the messages' `terms`: every entry the index holds is a live
/// message's terms, and every live message's terms are in it.
async fn search_index_is_in_step(path: &std::path::Path) -> Result<(), sqlx::Error> {
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await?;
    sqlx::query("INSERT INTO search_terms (search_terms, rank) VALUES ('integrity-check', 1)")
        .execute(&mut raw)
        .await?;
    raw.close().await
}

#[tokio::test]
async fn the_search_index_follows_edits_deletions_and_deleted_rooms() {
    let texts = (0..6).map(|n| format!("Café número {n} 東京タワー"));
    let written = Written::new(["kept", "deleted"], texts).await;
    let (chat, alice, rooms, sent) = (
        &written.chat,
        written.file.alice.id,
        &written.file.rooms,
        &written.file.sent,
    );
    chat.edit_message(alice, rooms[0], sent[0].id, "an edited café")
        .await
        .unwrap();
    chat.delete_message(alice, rooms[0], sent[2].id)
        .await
        .unwrap();
    chat.delete_room(alice, rooms[1]).await.unwrap();
    let file = written.close().await;

    search_index_is_in_step(&file.path).await.unwrap();
    let chat = file.reopen().await;
    let found = chat.search(file.alice.id, "cafe", None, None, None);
    let found: Vec<_> = found.await.unwrap().items.iter().map(|m| m.id).collect();
    assert_eq!(found, [file.sent[4].id, file.sent[0].id]);
}
