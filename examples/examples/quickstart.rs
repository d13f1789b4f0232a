//! Quickstart: the whole chat domain in memory, in one page.
//!
//! Run it with `cargo run -p examples --example quickstart`.

use std::sync::Arc;

use chat_core::auth::LoginName;
use chat_core::store::MemoryStore;
use chat_core::{Chat, HistoryQuery, NewMessage, NewRoom, NewUser};

#[tokio::main]
async fn main() -> Result<(), chat_core::Error> {
    // One engine over one store. Swap MemoryStore for a SQLite or sled store to keep the data.
    let chat = Chat::new(Arc::new(MemoryStore::new()));

    // Users register with a password (Argon2id) and log in for tokens...
    let alice = chat
        .register(NewUser::named("alice"), "wonderland-42")
        .await?;
    let login = chat
        .login(LoginName::Username("alice".into()), "wonderland-42")
        .await?;
    // ...and a request carrying the access token is authenticated back to the user.
    let me = chat.authenticate(&login.tokens.access_token).await?;
    assert_eq!(me.user_id, alice.id);
    let bob = chat.register(NewUser::named("bob"), "builder-1234").await?;
    println!("registered {} and {}", alice.username, bob.username);

    // Act as one user at a time; the engine checks what each may do.
    let (me, bob) = (chat.as_user(alice.id), chat.as_user(bob.id));

    // A public room: Alice owns it, Bob joins.
    let room = me.create_room(NewRoom::named("general")).await?;
    let (general, bobs_general) = (me.room(room.id), bob.room(room.id));
    bobs_general.join(None).await?;
    let hello = general.send(NewMessage::text("hello!")).await?.message;
    let question = general
        .send(NewMessage::text("anyone here?"))
        .await?
        .message;
    for message in [&hello, &question] {
        println!("#{} {}: {}", message.seq, alice.username, message.body);
    }

    // Bob waves back; every message read from now on carries its reactions.
    let waved = bobs_general.react(hello.id, "👋").await?;
    for reaction in &waved.reactions {
        println!(
            "{} × {} (bob's own: {})",
            reaction.key, reaction.count, reaction.me
        );
    }

    // A direct message creates the two-person conversation on first use.
    let dm = me
        .send_direct(bob.id(), NewMessage::text("psst, bob"))
        .await?;
    println!("direct message in conversation {}", dm.message.room_id);

    // Bob has two unread messages in the room and one in the conversation.
    let summary = bob.unread().await?;
    println!("bob has {} unread message(s)", summary.total);
    for unread in &summary.rooms {
        println!("  room {}: {} unread", unread.room_id, unread.unread);
    }

    // Bob reads the room's history and marks it read.
    let page = bobs_general.history(HistoryQuery::newest(50)).await?;
    let newest = page.items.last().map_or(0, |m| m.seq);
    let state = bobs_general.mark_read(newest).await?;
    println!("after reading: {} unread in general", state.unread);

    // Bob answers in a thread under "hello!", mentioning Alice; she sees both counted.
    let reply = NewMessage::text("hi alice!")
        .in_thread(hello.id)
        .mentioning(me.id());
    bobs_general.send(reply).await?;
    let thread = general.threads(None, None).await?.items.remove(0);
    let replies = thread.root.thread.map_or(0, |t| t.reply_count);
    println!("thread under {:?}: {replies} reply", thread.root.body);
    let alices = me.unread().await?;
    println!(
        "alice: {} mention, {} thread reply unread",
        alices.mentions, alices.threads
    );

    // What is left for Bob: the direct message.
    for message in bob.unread_messages(None, None).await?.items {
        println!("still unread: {}", message.body);
    }
    assert_eq!(bob.unread().await?.total, 1);
    Ok(())
}
