//! Read markers and unread counts.

use crate::Field;
use crate::testing::Harness;
use crate::{Error, NewMessage, RoomUnread};

pub async fn unread_counts_messages_from_others_after_the_marker(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "general").await;
    chat.send(alice.id, room.id, NewMessage::text("before bob"))
        .await
        .unwrap();
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let joined = chat.read_state(bob.id, room.id).await.unwrap();
    assert_eq!(
        (joined.last_read_seq, joined.last_seq, joined.unread),
        (1, 1, 0)
    );

    for i in 0..3 {
        chat.send(alice.id, room.id, NewMessage::text(format!("a{i}")))
            .await
            .unwrap();
    }
    assert_eq!(chat.read_state(bob.id, room.id).await.unwrap().unread, 3);
    assert_eq!(chat.read_state(alice.id, room.id).await.unwrap().unread, 0);

    // Bob answers: sending moves his marker past everything before it.
    let reply = chat
        .send(bob.id, room.id, NewMessage::text("hi"))
        .await
        .unwrap();
    let state = chat.read_state(bob.id, room.id).await.unwrap();
    assert_eq!((state.last_read_seq, state.unread), (reply.message.seq, 0));
    assert_eq!(chat.read_state(alice.id, room.id).await.unwrap().unread, 1);
}

pub async fn read_marker_only_moves_forward(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    for i in 0..5 {
        chat.send(alice.id, room.id, NewMessage::text(format!("m{i}")))
            .await
            .unwrap();
    }
    let state = chat.mark_read(bob.id, room.id, 4).await.unwrap();
    assert_eq!(
        (state.last_read_seq, state.last_seq, state.unread),
        (4, 5, 1)
    );
    let back = chat.mark_read(bob.id, room.id, 2).await.unwrap();
    assert_eq!((back.last_read_seq, back.unread), (4, 1));
    let all = chat.mark_read(bob.id, room.id, 5).await.unwrap();
    assert_eq!((all.last_read_seq, all.unread), (5, 0));
    assert_eq!(
        chat.member(bob.id, room.id, bob.id)
            .await
            .unwrap()
            .last_read_seq,
        5
    );
}

pub async fn mark_read_beyond_the_newest_message_is_invalid(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    chat.send(alice.id, room.id, NewMessage::text("one"))
        .await
        .unwrap();
    assert_err!(
        chat.mark_read(alice.id, room.id, 2).await,
        Error::Invalid {
            field: Field::Seq,
            ..
        }
    );
    assert_err!(
        chat.mark_read(alice.id, room.id, u64::MAX).await,
        Error::Invalid {
            field: Field::Seq,
            ..
        }
    );
    assert_eq!(
        chat.mark_read(alice.id, room.id, 0)
            .await
            .unwrap()
            .last_read_seq,
        1
    );
}

pub async fn unread_summary_spans_all_rooms(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let one = chat.new_room(&alice, "one").await;
    let two = chat.new_room(&alice, "two").await;
    let quiet = chat.new_room(&alice, "quiet").await;
    for room in [&one, &two, &quiet] {
        chat.join_room(bob.id, room.id, None).await.unwrap();
    }
    for _ in 0..2 {
        chat.send(alice.id, one.id, NewMessage::text("x"))
            .await
            .unwrap();
    }
    chat.send(alice.id, two.id, NewMessage::text("y"))
        .await
        .unwrap();
    let direct = chat
        .send_direct(alice.id, bob.id, NewMessage::text("z"))
        .await
        .unwrap();

    let summary = chat.unread_summary(bob.id).await.unwrap();
    assert_eq!(summary.total, 4);
    let mut rooms = summary.rooms.clone();
    rooms.sort_by_key(|r| r.room_id);
    let mut expected = vec![
        RoomUnread {
            room_id: one.id,
            unread: 2,
            mentions: 0,
            threads: 0,
        },
        RoomUnread {
            room_id: two.id,
            unread: 1,
            mentions: 0,
            threads: 0,
        },
        RoomUnread {
            room_id: direct.message.room_id,
            unread: 1,
            mentions: 0,
            threads: 0,
        },
    ];
    expected.sort_by_key(|r| r.room_id);
    assert_eq!(rooms, expected);
    assert_eq!(chat.unread_summary(alice.id).await.unwrap().total, 0);

    chat.mark_read(bob.id, one.id, 2).await.unwrap();
    assert_eq!(chat.unread_summary(bob.id).await.unwrap().total, 2);
}

pub async fn unread_messages_span_all_rooms(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let one = chat.new_room(&alice, "one").await;
    let two = chat.new_room(&alice, "two").await;
    chat.join_room(bob.id, one.id, None).await.unwrap();
    chat.join_room(bob.id, two.id, None).await.unwrap();
    chat.send(alice.id, one.id, NewMessage::text("read"))
        .await
        .unwrap();
    chat.mark_read(bob.id, one.id, 1).await.unwrap();
    chat.clock.advance(chrono::TimeDelta::seconds(1));
    chat.send(alice.id, one.id, NewMessage::text("new in one"))
        .await
        .unwrap();
    chat.clock.advance(chrono::TimeDelta::seconds(1));
    let deleted = chat
        .send(alice.id, two.id, NewMessage::text("deleted"))
        .await
        .unwrap();
    chat.delete_message(alice.id, two.id, deleted.message.id)
        .await
        .unwrap();
    chat.clock.advance(chrono::TimeDelta::seconds(1));
    chat.send(alice.id, two.id, NewMessage::text("new in two"))
        .await
        .unwrap();
    chat.clock.advance(chrono::TimeDelta::seconds(1));
    chat.send_direct(alice.id, bob.id, NewMessage::text("new direct"))
        .await
        .unwrap();

    let unseen = chat
        .unread_messages(bob.id, None, None)
        .await
        .unwrap()
        .items;
    let bodies: Vec<_> = unseen.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["new in one", "new in two", "new direct"]);
    let mut paged = Vec::new();
    let mut after = None;
    loop {
        let page = chat.unread_messages(bob.id, after, Some(2)).await.unwrap();
        assert!(page.items.len() <= 2);
        paged.extend(page.items.into_iter().map(|m| m.body));
        let Some(next) = page.next_cursor else { break };
        after = Some(next);
    }
    assert_eq!(
        paged, bodies,
        "paged past the deleted message, the same list"
    );
    assert_err!(
        "not-a-cursor".parse::<crate::MessageCursor>(),
        Error::Invalid {
            field: Field::Cursor,
            ..
        }
    );
    assert!(
        chat.unread_messages(alice.id, None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
