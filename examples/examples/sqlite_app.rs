//! sqlite-app: data that outlives the process. Open a SQLite file, write, close, reopen, and
//! page through history with `before` and `after`.
//!
//! Run it with `cargo run -p examples --example sqlite_app`.

use std::sync::Arc;

use chat_core::{Chat, HistoryQuery, NewMessage, NewRoom, NewUser};
use chat_store_sqlite::SqliteStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A throwaway directory keeps the example clean; a real app uses a fixed path.
    let dir = tempfile::tempdir()?;
    let url = format!("sqlite://{}", dir.path().join("chat.db").display());

    // First run: create a user, a room and 25 messages.
    let (alice, room) = {
        let store = SqliteStore::open(&url).await?;
        let chat = Chat::new(Arc::new(store));
        let alice = chat.create_user(NewUser::named("alice")).await?;
        let room = chat
            .create_room(alice.id, NewRoom::named("journal"))
            .await?;
        for day in 1..=25 {
            let entry = NewMessage::text(format!("day {day}: wrote some Rust"));
            chat.send(alice.id, room.id, entry).await?;
        }
        println!("wrote 25 messages to {url}");
        (alice, room)
        // The engine and the store are dropped here: the file is closed.
    };

    // Second run: everything is still there, acknowledged writes were durable.
    let chat = Chat::new(Arc::new(SqliteStore::open(&url).await?));
    let journal = chat.as_user(alice.id).room(room.id);
    let reopened = journal.info().await?;
    println!(
        "reopened '{}': {} messages",
        reopened.name, reopened.last_seq
    );

    // Newest first page, then walk back from each page's `next_cursor` to the beginning.
    let mut page = journal.history(HistoryQuery::newest(10)).await?;
    loop {
        let seqs: Vec<u64> = page.items.iter().map(|m| m.seq).collect();
        println!("  page: {seqs:?} (more before: {})", page.has_more());
        let Some(seq) = page.next_cursor else { break };
        page = journal.history(HistoryQuery::before(seq, 10)).await?;
    }

    // Forward from a known point with `after`: what a client that saw #20 has missed.
    let missed = journal.history(HistoryQuery::after(20, 10)).await?;
    let bodies: Vec<_> = missed.items.iter().map(|m| m.body.as_str()).collect();
    println!("after #20: {bodies:?}");
    assert_eq!(missed.items.len(), 5);
    Ok(())
}
