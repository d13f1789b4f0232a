//! Direct conversations between two users.

use crate::Field;
use crate::testing::Harness;
use crate::{Denied, Entity, Error, HistoryQuery, NewMessage, Role, RoomKind, RoomUpdate, UserId};

pub async fn direct_conversation_is_created_once_per_pair(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let first = chat
        .send_direct(alice.id, bob.id, NewMessage::text("hi bob"))
        .await
        .unwrap();
    let reply = chat
        .send_direct(bob.id, alice.id, NewMessage::text("hi alice"))
        .await
        .unwrap();
    assert_eq!(first.message.room_id, reply.message.room_id);
    assert_eq!(reply.message.seq, 2);
    let room = chat.direct_room(bob.id, alice.id).await.unwrap();
    assert_eq!(room.id, first.message.room_id);
    assert_eq!(room.kind, RoomKind::Direct);
    assert_eq!(room.member_count, 2);
    assert_eq!(room.owner, None);
    let other = chat.direct_room(alice.id, carol.id).await.unwrap();
    assert_ne!(other.id, room.id);

    let history = chat
        .direct_history(alice.id, bob.id, HistoryQuery::default())
        .await
        .unwrap();
    let bodies: Vec<_> = history.items.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["hi bob", "hi alice"]);
    assert!(
        chat.direct_history(bob.id, carol.id, HistoryQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_err!(
        chat.history(carol.id, room.id, HistoryQuery::default())
            .await,
        Error::Forbidden(_)
    );
    assert_err!(chat.room(carol.id, room.id).await, Error::Forbidden(_));
}

pub async fn direct_conversations_cannot_be_joined_left_or_managed(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let room = chat.direct_room(alice.id, bob.id).await.unwrap();
    assert_err!(
        chat.join_room(carol.id, room.id, None).await,
        Error::Forbidden(Denied::DirectConversation)
    );
    assert_err!(
        chat.leave_room(alice.id, room.id).await,
        Error::Forbidden(Denied::DirectConversation)
    );
    assert_err!(
        chat.add_member(alice.id, room.id, carol.id, Role::Member)
            .await,
        Error::Forbidden(Denied::DirectConversation)
    );
    assert_err!(
        chat.remove_member(alice.id, room.id, bob.id).await,
        Error::Forbidden(Denied::DirectConversation)
    );
    let rename = RoomUpdate {
        name: Some("ours".into()),
        ..RoomUpdate::default()
    };
    assert_err!(
        chat.update_room(alice.id, room.id, rename).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.delete_room(alice.id, room.id).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.send(carol.id, room.id, NewMessage::text("let me in"))
            .await,
        Error::Forbidden(_)
    );
    assert!(
        chat.public_rooms(carol.id, None, None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn direct_conversations_list_other_user_last_message_and_unread(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    chat.send_direct(bob.id, alice.id, NewMessage::text("one"))
        .await
        .unwrap();
    chat.send_direct(bob.id, alice.id, NewMessage::text("two"))
        .await
        .unwrap();
    chat.clock.advance(chrono::TimeDelta::seconds(1));
    chat.send_direct(alice.id, carol.id, NewMessage::text("hey carol"))
        .await
        .unwrap();
    chat.new_room(&alice, "not direct").await;

    let list = chat
        .direct_conversations(alice.id, None, None)
        .await
        .unwrap();
    assert_eq!(list.items.len(), 2);
    assert_eq!(list.next_cursor, None);
    let [with_bob, with_carol] = &list.items[..] else {
        unreachable!()
    };
    assert_eq!(
        with_bob.other.as_ref().map(|o| o.username.as_str()),
        Some("bob"),
        "oldest conversation first"
    );
    assert_eq!(
        with_bob.last_message.as_ref().map(|m| m.body.as_str()),
        Some("two")
    );
    assert_eq!(with_bob.unread, 2);
    assert_eq!(with_carol.other.as_ref().map(|o| o.id), Some(carol.id));
    assert_eq!(with_carol.unread, 0, "own messages are read");
    let first = chat
        .direct_conversations(alice.id, None, Some(1))
        .await
        .unwrap();
    assert_eq!(first.next_cursor, Some(with_bob.room.id));
    let rest = chat
        .direct_conversations(alice.id, first.next_cursor, Some(1))
        .await
        .unwrap();
    assert_eq!((rest.items.len(), rest.next_cursor), (1, None));
    assert_eq!(rest.items[0].room.id, with_carol.room.id);
    let carol_view = chat
        .direct_conversations(carol.id, None, None)
        .await
        .unwrap()
        .items;
    assert_eq!(carol_view.len(), 1);
    assert_eq!(carol_view[0].unread, 1);
}

pub async fn messages_to_me_lists_direct_messages_from_others(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    chat.send_direct(bob.id, alice.id, NewMessage::text("from bob"))
        .await
        .unwrap();
    chat.clock.advance(chrono::TimeDelta::seconds(1));
    chat.send_direct(alice.id, bob.id, NewMessage::text("to bob"))
        .await
        .unwrap();
    chat.clock.advance(chrono::TimeDelta::seconds(1));
    let gone = chat
        .send_direct(carol.id, alice.id, NewMessage::text("oops"))
        .await
        .unwrap();
    chat.clock.advance(chrono::TimeDelta::seconds(1));
    chat.send_direct(carol.id, alice.id, NewMessage::text("from carol"))
        .await
        .unwrap();
    chat.delete_message(carol.id, gone.message.room_id, gone.message.id)
        .await
        .unwrap();
    let room = chat.new_room(&bob, "public").await;
    chat.send(bob.id, room.id, NewMessage::text("not direct"))
        .await
        .unwrap();

    let mine = chat.messages_to_me(alice.id, None, None).await.unwrap();
    let bodies: Vec<_> = mine.items.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(
        bodies,
        ["from bob", "from carol"],
        "conversation by conversation"
    );
    assert_eq!(mine.next_cursor, None);
    // Paged one by one, past alice's own message and carol's deleted one: the same list.
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = chat.messages_to_me(alice.id, after, Some(1)).await.unwrap();
        assert!(page.items.len() <= 1);
        paged.extend(page.items.into_iter().map(|m| m.body));
        let Some(next) = page.next_cursor else { break };
        let next = next.to_string().parse().unwrap();
        after = Some(next);
    }
    assert_eq!(paged, bodies);
}

pub async fn direct_message_to_self_or_unknown_user_is_rejected(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    assert_err!(
        chat.send_direct(alice.id, alice.id, NewMessage::text("me"))
            .await,
        Error::Invalid {
            field: Field::User,
            ..
        }
    );
    let ghost = UserId(uuid::Uuid::from_u128(u128::MAX));
    assert_err!(
        chat.send_direct(alice.id, ghost, NewMessage::text("anyone?"))
            .await,
        Error::NotFound(Entity::User)
    );
    assert!(
        chat.direct_conversations(alice.id, None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn a_direct_conversation_deleted_in_the_store_starts_afresh(h: Harness) {
    // Engines remember which room holds a pair's conversation; a host that deletes the room
    // through the store must not leave a direct message failing on any of them.
    let chat = h.chat().await;
    let peer = chat.peer();
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let hello = NewMessage::text("hello");
    let first = chat.send_direct(alice.id, bob.id, hello.clone()).await;
    let old = first.unwrap().message.room_id;
    let back = peer.send_direct(bob.id, alice.id, hello.clone()).await;
    assert_eq!(back.unwrap().message.room_id, old);

    chat.store.delete_room(old).await.unwrap();
    for (engine, from, to) in [(&*chat.chat, alice.id, bob.id), (&*peer, bob.id, alice.id)] {
        let sent = engine.send_direct(from, to, hello.clone()).await.unwrap();
        assert_ne!(sent.message.room_id, old, "a new conversation");
        let room = engine.direct_room(from, to).await.unwrap();
        assert_eq!(sent.message.room_id, room.id);
    }
    let history = chat
        .direct_history(alice.id, bob.id, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(
        history.items.len(),
        2,
        "both sends landed in the new conversation"
    );
}
