//! test-harness: how to test an application that embeds chat. The in-memory store with a
//! manual clock and sequential ids makes every id and time exact, so tests can assert them.
//!
//! Run the scenario with `cargo run -p examples --example test_harness`, and its test with
//! `cargo test -p examples --example test_harness`.

use std::sync::Arc;

use chat_core::clock::ManualClock;
use chat_core::ids::SequentialIds;
use chat_core::store::MemoryStore;
use chat_core::{Chat, Error, Message, NewMessage, NewRoom, NewUser};
use chrono::{TimeDelta, TimeZone, Utc};

/// The application code under test: posts a greeting a minute after a room is created.
async fn greet_later(chat: &Chat, clock: &ManualClock) -> Result<Message, Error> {
    let host = chat.create_user(NewUser::named("host")).await?;
    let room = chat.create_room(host.id, NewRoom::named("lobby")).await?;
    clock.advance(TimeDelta::minutes(1));
    let sent = chat
        .send(host.id, room.id, NewMessage::text("welcome!"))
        .await?;
    Ok(sent.message)
}

/// An engine whose ids are 1, 2, 3… and whose clock stands still until told to move.
fn deterministic_chat() -> (Chat, Arc<ManualClock>) {
    let start = Utc.with_ymd_and_hms(2030, 1, 1, 9, 0, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let chat = Chat::builder(Arc::new(MemoryStore::new()))
        .clock(clock.clone())
        .ids(Arc::new(SequentialIds::new()))
        .build()
        .expect("engine");
    (chat, clock)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let (chat, clock) = deterministic_chat();
    let message = greet_later(&chat, &clock).await?;
    println!("message {} at {}", message.id, message.created_at);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_greeting_has_exact_ids_and_time() {
        let (chat, clock) = deterministic_chat();
        let message = greet_later(&chat, &clock).await.unwrap();
        // Ids in creation order: user 1, room 2, message 3.
        assert_eq!(
            message.sender.to_string(),
            "00000000-0000-0000-0000-000000000001"
        );
        assert_eq!(
            message.room_id.to_string(),
            "00000000-0000-0000-0000-000000000002"
        );
        assert_eq!(
            message.id.to_string(),
            "00000000-0000-0000-0000-000000000003"
        );
        assert_eq!(
            message.created_at,
            Utc.with_ymd_and_hms(2030, 1, 1, 9, 1, 0).unwrap()
        );
        assert_eq!(message.seq, 1);
    }
}
