//! `chat-server check`: counters corrupted behind the store's back are found, and `--repair`
//! sets the room counters right.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::process::Command;
use std::sync::Arc;

use chat_core::{Chat, NewMessage, NewRoom, NewUser};
use chat_store_sqlite::SqliteStore;
use sqlx::{ConnectOptions, Connection};

/// `chat-server --database URL check [ARGS]`: whether it succeeded, and what it printed.
fn check(url: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--database", url, "check"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    (output.status.success(), stdout)
}

/// Runs raw SQL on the database file, as a bug or a hand edit would.
async fn corrupt(path: &std::path::Path, statements: &[&'static str]) {
    let mut raw = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .connect()
        .await
        .unwrap();
    for sql in statements {
        sqlx::query(*sql).execute(&mut raw).await.unwrap();
    }
    raw.close().await.unwrap();
}

#[tokio::test]
async fn corrupted_counters_are_found_and_room_counters_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let url = format!("sqlite://{}", path.display());
    let store = Arc::new(SqliteStore::open(&url).await.unwrap());
    let chat = Chat::new(store.clone());
    let alice = chat.create_user(NewUser::named("alice")).await.unwrap();
    let bob = chat.create_user(NewUser::named("bob")).await.unwrap();
    let room = chat
        .create_room(alice.id, NewRoom::named("counted"))
        .await
        .unwrap();
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let root = chat.send(alice.id, room.id, NewMessage::text("root"));
    let root = root.await.unwrap().message;
    let reply = NewMessage::text("reply").in_thread(root.id);
    chat.send(bob.id, room.id, reply).await.unwrap();
    let mention = NewMessage::text("bob?").mentioning(bob.id);
    chat.send(alice.id, room.id, mention).await.unwrap();
    drop(chat);
    Arc::into_inner(store).unwrap().close().await;

    let (clean, out) = check(&url, &[]);
    assert!(clean, "{out}");
    assert!(
        out.contains("1 rooms, 2 members, 3 messages: 0 differences"),
        "{out}"
    );

    corrupt(
        &path,
        &[
            "UPDATE rooms SET member_count = 9, last_seq = 2",
            "UPDATE members SET last_read_seq = 7",
        ],
    )
    .await;
    let (clean, out) = check(&url, &[]);
    assert!(!clean, "{out}");
    for expected in [
        "member_count is 9, it has 2 members",
        "last_seq is 2, the newest message is 3",
        "read marker 7 is beyond the newest message 3",
    ] {
        assert!(out.contains(expected), "{expected:?} in {out}");
    }
    let (repaired, out) = check(&url, &["--repair"]);
    assert!(repaired, "{out}");
    assert!(out.contains("repaired: room"), "{out}");
    let (clean, out) = check(&url, &[]);
    assert!(clean, "after the repair: {out}");

    // Mention counts and thread summaries are found and repaired too.
    corrupt(
        &path,
        &[
            "UPDATE members SET last_read_seq = 0",
            "DELETE FROM mentions",
            "UPDATE messages SET thread_count = 5 WHERE thread_count = 1",
        ],
    )
    .await;
    let (clean, out) = check(&url, &[]);
    assert!(!clean, "{out}");
    let mentions = format!("user {} has 0 unread mentions, history says 1", bob.id);
    assert!(out.contains(&mentions), "{out}");
    let thread = format!(
        "thread {} says 5 replies (newest 2), history says 1",
        root.id
    );
    assert!(out.contains(&thread), "{out}");
    let (repaired, out) = check(&url, &["--repair"]);
    assert!(repaired, "{out}");
    for finding in [&mentions, &thread] {
        let fixed = format!("repaired: room {}: {finding}", room.id);
        assert!(out.contains(&fixed), "{out}");
    }
    let (clean, out) = check(&url, &[]);
    assert!(clean, "after the repair: {out}");
}
