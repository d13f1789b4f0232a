//! `chat-server export`: the whole chat, as JSON Lines, to a file.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::process::Command;
use std::sync::Arc;

use chat_core::export::{FORMAT, Record};
use chat_core::{Chat, NewMessage, NewRoom, NewUser};
use chat_store_sqlite::SqliteStore;

#[tokio::test]
async fn export_writes_the_chat_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("chat.db").display());
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let chat = Chat::new(store.clone());
    let alice = chat
        .register(NewUser::named("alice"), "a long password")
        .await;
    let alice = alice.unwrap();
    let bob = chat.create_user(NewUser::named("bob")).await.unwrap();
    let room = chat.create_room(alice.id, NewRoom::named("exported"));
    let room = room.await.unwrap();
    chat.join_room(bob.id, room.id, None).await.unwrap();
    for text in ["one", "two", "three"] {
        chat.send(bob.id, room.id, NewMessage::text(text))
            .await
            .unwrap();
    }
    drop(chat);
    Arc::into_inner(store).unwrap().close().await;

    let file = dir.path().join("chat.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--database", &url, "export", "--output"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("exported 2 users, 1 rooms, 2 members, 3 messages"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let records: Vec<Record> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let Record::Header { format, source, .. } = &records[0] else {
        panic!("a header first: {:?}", records[0]);
    };
    assert_eq!((format.as_str(), source.as_str()), (FORMAT, url.as_str()));
    assert_eq!(records.len(), 1 + 2 + 1 + 2 + 3 + 1);
    let hashes = records.iter().filter(|record| {
        matches!(record, Record::User { password_hash: Some(hash), .. } if hash.starts_with("$argon2"))
    });
    assert_eq!(hashes.count(), 1, "alice's password hash, as stored");
}
