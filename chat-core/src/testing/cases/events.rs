//! Live events: who receives what, and lagging subscribers.

use std::sync::Arc;

use crate::events::{Event, InProcessBus, Subscription};
use crate::testing::Harness;
use crate::{NewMessage, Role, Status, UserUpdate};

/// Every event ready now, without waiting for the bus (events are published before operations
/// return).
pub(super) async fn drain(subscription: &mut Subscription) -> Vec<Arc<Event>> {
    let mut events = Vec::new();
    while let Some(event) = subscription.try_recv().await {
        events.push(event);
    }
    events
}

/// The next event, failing the test if none comes within a few seconds (a gap is filled from
/// the store after `gap_wait`, 100 ms by default).
pub(super) async fn next(subscription: &mut Subscription) -> Option<Arc<Event>> {
    tokio::time::timeout(std::time::Duration::from_secs(5), subscription.recv())
        .await
        .expect("an event within 5 s")
}

fn kinds(events: &[Arc<Event>]) -> Vec<&'static str> {
    events.iter().map(|e| e.name()).collect()
}

pub async fn subscribers_get_only_their_rooms_events(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let eve = chat.new_user("eve").await;
    let mut alice_feed = chat.subscribe(alice.id).await.unwrap();
    let mut eve_feed = chat.subscribe(eve.id).await.unwrap();

    let room = chat.new_room(&bob, "bob's").await;
    chat.send(bob.id, room.id, NewMessage::text("private chatter"))
        .await
        .unwrap();
    chat.send_direct(bob.id, alice.id, NewMessage::text("psst"))
        .await
        .unwrap();
    chat.typing(bob.id, room.id, true).await.unwrap();

    // Alice hears of the direct conversation from her own joining of it, then its message.
    let alice_events = drain(&mut alice_feed).await;
    assert_eq!(kinds(&alice_events), ["member.joined", "message.created"]);
    match (&*alice_events[0], &*alice_events[1]) {
        (Event::MemberJoined { member }, Event::MessageCreated { message }) => {
            assert_eq!(member.user_id, alice.id);
            assert_eq!(message.body, "psst");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        drain(&mut eve_feed).await.is_empty(),
        "eve is in none of these rooms"
    );
}

pub async fn joining_and_leaving_update_the_feed(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "general").await;
    let mut feed = chat.subscribe(bob.id).await.unwrap();
    chat.send(alice.id, room.id, NewMessage::text("before"))
        .await
        .unwrap();
    chat.join_room(bob.id, room.id, None).await.unwrap();
    chat.send(alice.id, room.id, NewMessage::text("during"))
        .await
        .unwrap();
    chat.remove_member(alice.id, room.id, bob.id).await.unwrap();
    chat.send(alice.id, room.id, NewMessage::text("after"))
        .await
        .unwrap();
    let events = drain(&mut feed).await;
    assert_eq!(
        kinds(&events),
        ["member.joined", "message.created", "member.left"]
    );
    match &*events[2] {
        Event::MemberLeft { removed_by, .. } => assert_eq!(*removed_by, Some(alice.id)),
        other => panic!("unexpected {other:?}"),
    }
}

pub async fn state_changes_publish_events(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let mut feed = chat.subscribe(alice.id).await.unwrap();
    // Alice's own coming online (presence_is_announced_in_small_rooms).
    assert_eq!(kinds(&drain(&mut feed).await), ["status.updated"]);

    let sent = chat
        .send(bob.id, room.id, NewMessage::text("hi"))
        .await
        .unwrap()
        .message;
    chat.edit_message(bob.id, room.id, sent.id, "hello")
        .await
        .unwrap();
    chat.mark_read(alice.id, room.id, 1).await.unwrap();
    chat.mark_read(alice.id, room.id, 1).await.unwrap(); // no movement, no event
    chat.typing(bob.id, room.id, true).await.unwrap();
    let busy = UserUpdate {
        status: Some(Status::Busy),
        ..UserUpdate::default()
    };
    chat.update_user(bob.id, bob.id, busy).await.unwrap();
    chat.set_role(alice.id, room.id, bob.id, Role::Admin)
        .await
        .unwrap();
    let topic = crate::RoomUpdate {
        topic: Some(Some("news".into())),
        ..Default::default()
    };
    chat.update_room(alice.id, room.id, topic).await.unwrap();
    chat.delete_message(alice.id, room.id, sent.id)
        .await
        .unwrap();
    chat.leave_room(bob.id, room.id).await.unwrap();
    chat.delete_room(alice.id, room.id).await.unwrap();

    let events = drain(&mut feed).await;
    assert_eq!(
        kinds(&events),
        [
            "message.created",
            "message.updated",
            "read.updated",
            "typing",
            "status.updated",
            "member.updated",
            "room.updated",
            "message.deleted",
            "member.left",
            "room.deleted",
        ]
    );
    assert!(events.iter().all(|e| e.room_id() == Some(room.id)));
    // After the room is gone, its events no longer reach the feed.
    let later = chat.new_room(&bob, "elsewhere").await;
    chat.send(bob.id, later.id, NewMessage::text("x"))
        .await
        .unwrap();
    assert!(drain(&mut feed).await.is_empty());
}

pub async fn presence_is_announced_in_small_rooms(h: Harness) {
    let config = crate::testing::test_config().with_presence_max_members(2);
    let chat = h.chat_with(move |b| b.config(config.clone())).await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let pair = chat.new_room(&alice, "pair").await;
    chat.join_room(bob.id, pair.id, None).await.unwrap();
    let crowd = chat.new_room(&alice, "crowd").await;
    for user in [&bob, &carol] {
        chat.join_room(user.id, crowd.id, None).await.unwrap();
    }
    let mut watcher = chat.subscribe(bob.id).await.unwrap();
    drain(&mut watcher).await;
    let presence = |event: &Event| match event {
        Event::StatusUpdated {
            room_id,
            user_id,
            online,
            ..
        } => (*room_id, *user_id, *online),
        other => panic!("unexpected {other:?}"),
    };

    // Alice's first connection, on any engine, is announced in the room of two only.
    let first = chat.peer().subscribe(alice.id).await.unwrap();
    let events = drain(&mut watcher).await;
    let seen: Vec<_> = events.iter().map(|e| presence(e)).collect();
    assert_eq!(seen, [(pair.id, alice.id, true)]);
    // More connections, on this engine or another, and closing all but one, change nothing
    // anyone sees.
    let second = chat.subscribe(alice.id).await.unwrap();
    let third = chat.subscribe(alice.id).await.unwrap();
    first.close().await;
    second.close().await;
    assert!(drain(&mut watcher).await.is_empty());
    // Her last connection going, even by being dropped, is.
    drop(third);
    let event = next(&mut watcher).await.expect("an event");
    assert_eq!(presence(&event), (pair.id, alice.id, false));
    assert!(chat.online(bob.id, &[alice.id]).await.unwrap().is_empty());
    // A status change reaches the same rooms.
    let away = UserUpdate {
        status: Some(Status::Away),
        ..UserUpdate::default()
    };
    chat.update_user(alice.id, alice.id, away).await.unwrap();
    let events = drain(&mut watcher).await;
    let seen: Vec<_> = events.iter().map(|e| presence(e)).collect();
    assert_eq!(seen, [(pair.id, alice.id, false)]);
}

pub async fn lagging_subscriber_gets_resync(h: Harness) {
    let bus = Arc::new(InProcessBus::new(4));
    let chat = h.chat_with(move |builder| builder.bus(bus.clone())).await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "busy").await;
    let mut slow = chat.subscribe(alice.id).await.unwrap();
    // Senders never wait for the slow subscriber.
    for i in 0..20 {
        chat.send(alice.id, room.id, NewMessage::text(format!("m{i}")))
            .await
            .unwrap();
    }
    let first = slow.recv().await.unwrap();
    assert_eq!(*first, Event::Resync);
    // What it missed is in the store: catch up from its last cursor.
    let missed = chat.changes(alice.id, room.id, 0, None).await.unwrap();
    assert_eq!(missed.items.len(), 20);
    // The feed goes on from where the store was at the resync, without replaying what the
    // catch-up already covers.
    assert!(drain(&mut slow).await.is_empty());
    chat.send(alice.id, room.id, NewMessage::text("after"))
        .await
        .unwrap();
    match drain(&mut slow).await.as_slice() {
        [event] => match &**event {
            Event::MessageCreated { message } => assert_eq!(message.seq, 21),
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("expected the one new message, got {other:?}"),
    }
}
