//! live-events: subscribe to a user's events and print what arrives while other tasks send,
//! join, leave and edit. A user who is not in the room sees nothing of it.
//!
//! Run it with `cargo run -p examples --example live_events`.

use std::sync::Arc;
use std::time::Duration;

use chat_core::events::Event;
use chat_core::store::MemoryStore;
use chat_core::{Chat, Error, NewMessage, NewRoom, NewUser};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let chat = Arc::new(Chat::new(Arc::new(MemoryStore::new())));
    let alice = chat.create_user(NewUser::named("alice")).await?;
    let bob = chat.create_user(NewUser::named("bob")).await?;
    let mallory = chat.create_user(NewUser::named("mallory")).await?;
    let room = chat
        .create_room(alice.id, NewRoom::named("general"))
        .await?;

    // Each feed follows its user's rooms, including rooms joined later.
    let mut alice_feed = chat.subscribe(alice.id).await?;
    let mut mallory_feed = chat.subscribe(mallory.id).await?;

    // Somewhere else in the application, Bob joins, talks, edits and leaves.
    let activity = {
        let chat = Arc::clone(&chat);
        tokio::spawn(async move {
            chat.join_room(bob.id, room.id, None).await?;
            let sent = chat.send(bob.id, room.id, NewMessage::text("helo")).await?;
            chat.edit_message(bob.id, room.id, sent.message.id, "hello")
                .await?;
            chat.typing(bob.id, room.id, true).await?;
            chat.leave_room(bob.id, room.id).await?;
            Ok::<_, Error>(())
        })
    };
    activity.await.expect("activity task")?;

    // Alice hears all of it, in order.
    for _ in 0..5 {
        let event = alice_feed.recv().await.expect("the bus is open");
        match &*event {
            Event::MemberJoined { member } => println!("alice sees: {} joined", member.user_id),
            Event::MessageCreated { message } => {
                println!("alice sees: new #{} {:?}", message.seq, message.body)
            }
            Event::MessageUpdated { message } => {
                println!("alice sees: #{} edited to {:?}", message.seq, message.body)
            }
            Event::Typing { .. } => println!("alice sees: someone is typing"),
            Event::MemberLeft { user_id, .. } => println!("alice sees: {user_id} left"),
            other => println!("alice sees: {other:?}"),
        }
    }

    // Mallory is in none of these rooms: her feed stays silent.
    let silent = tokio::time::timeout(Duration::from_millis(200), mallory_feed.recv()).await;
    assert!(silent.is_err(), "a non-member received an event");
    println!("mallory saw nothing");
    Ok(())
}
