//! Opening directories: ours reopens with its data; others are refused untouched.

use std::collections::BTreeMap;
use std::path::Path;

use chat_core::store::UserStore;
use chat_core::testing::{assert_incompatible, sample_user};
use chat_store_sled::{Durability, SledStore};

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            for (name, bytes) in snapshot(&path) {
                files.insert(format!("{}/{name}", path.display()), bytes);
            }
        } else {
            files.insert(
                path.display().to_string(),
                std::fs::read(&path).expect("read"),
            );
        }
    }
    files
}

#[tokio::test]
async fn data_survives_closing_and_reopening_by_url() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sled://{}", dir.path().join("db").display());
    let alice = sample_user("alice");
    {
        let store = SledStore::open(&url).await.expect("open");
        store
            .insert_user(&alice, Some("$hash"))
            .await
            .expect("insert");
    }
    let store = SledStore::open_with(&url, Durability::Background)
        .await
        .expect("reopen");
    assert_eq!(
        store.user(alice.id).await.expect("read"),
        Some(alice.clone())
    );
    assert_eq!(
        store
            .password_hash(alice.id)
            .await
            .expect("read")
            .as_deref(),
        Some("$hash")
    );
}

#[tokio::test]
async fn a_directory_of_other_files_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    let before = snapshot(dir.path());
    assert_incompatible(
        SledStore::open(&dir.path().to_string_lossy()).await,
        "not a chat database",
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[tokio::test]
async fn another_sled_database_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let other = sled::open(dir.path()).expect("another app's sled");
        other.insert("key", "value").expect("insert");
        other.flush().expect("flush");
    }
    let before = snapshot(dir.path());
    assert_incompatible(
        SledStore::open(&dir.path().to_string_lossy()).await,
        "not a chat database",
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[tokio::test]
async fn a_newer_format_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    drop(
        SledStore::open(&path.to_string_lossy())
            .await
            .expect("open"),
    );
    std::fs::write(path.join("CHAT_FORMAT"), "chat-engine sled format 99\n").expect("write");
    let before = snapshot(&path);
    assert_incompatible(SledStore::open(&path.to_string_lossy()).await, "newer");
    assert_eq!(snapshot(&path), before);
}

#[tokio::test]
async fn messages_indexed_in_an_older_form_are_found_after_reopening() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("db");
    let url = format!("sled://{}", path.display());
    let (alice, mut sent) = {
        let chat = chat_core::Chat::new(std::sync::Arc::new(
            SledStore::open(&url).await.expect("open"),
        ));
        let alice = chat
            .create_user(chat_core::NewUser::named("alice"))
            .await
            .expect("user");
        let room = chat
            .create_room(alice.id, chat_core::NewRoom::named("old"))
            .await
            .expect("room");
        // Enough messages for several of the index's lists, one of them deleted.
        let mut sent = Vec::new();
        for n in 0..150 {
            let note = chat_core::NewMessage::text(format!("note {n} written before"));
            sent.push(
                chat.send(alice.id, room.id, note)
                    .await
                    .expect("send")
                    .message,
            );
        }
        let gone = sent.remove(70);
        chat.delete_message(alice.id, room.id, gone.id)
            .await
            .expect("delete");
        (alice, sent)
    };
    sent.reverse();
    let sent: Vec<_> = sent.iter().map(|m| m.id).collect();
    // The index's first form: its `search` tree, and no `postings`.
    let first_form = |db: &sled::Db| {
        db.drop_tree("postings").expect("drop the index");
        let first = db.open_tree("search").expect("first form");
        first.insert(b"note", &[0u8; 16]).expect("old key");
    };
    // Its second: lists of 24-byte `seq ‖ id` entries, marked done by an empty value.
    let second_form = |db: &sled::Db| {
        let postings = db.open_tree("postings").expect("index");
        for key in postings.iter().keys() {
            let key = key.expect("key");
            postings.insert(&key, &[7u8; 24][..]).expect("old list");
        }
        postings.insert([0], &[]).expect("old marker");
    };
    for (form, written) in [
        ("first", &first_form as &dyn Fn(&sled::Db)),
        ("second", &second_form),
    ] {
        {
            let db = sled::open(&path).expect("raw sled");
            written(&db);
            db.flush().expect("flush");
        }
        let chat = chat_core::Chat::new(std::sync::Arc::new(
            SledStore::open(&url).await.expect("reopen"),
        ));
        let found = chat.search(alice.id, "note", None, None, Some(200)).await;
        let found: Vec<_> = found.expect("search").items.iter().map(|m| m.id).collect();
        assert_eq!(
            found, sent,
            "every live message, newest first, after the {form} form"
        );
        drop(chat);
        let db = sled::open(&path).expect("raw sled");
        assert!(
            !db.tree_names()
                .iter()
                .any(|name| name.as_ref() == b"search")
        );
    }
}
