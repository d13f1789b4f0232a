//! Sending, idempotency, replies, edits, deletes, history pages and catch-up.

use crate::Field;
use crate::clock::Clock;
use crate::testing::Harness;
use crate::{Conflict, Denied, Entity, Error, HistoryQuery, MessageId, NewMessage, Reaction, Role};

pub async fn messages_get_gapless_sequence_numbers(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    let other = chat.new_room(&alice, "other").await;
    for i in 1..=5u64 {
        let sent = chat
            .send(alice.id, room.id, NewMessage::text(format!("m{i}")))
            .await
            .unwrap();
        assert!(sent.created);
        assert_eq!(sent.message.seq, i);
        assert_eq!(sent.message.sender, alice.id);
        assert_eq!(sent.message.created_at, chat.clock.now());
    }
    // Each room counts on its own.
    let first = chat
        .send(alice.id, other.id, NewMessage::text("x"))
        .await
        .unwrap();
    assert_eq!(first.message.seq, 1);
    assert_eq!(chat.room(alice.id, room.id).await.unwrap().last_seq, 5);
    let fetched = chat.message(alice.id, room.id, first.message.id).await;
    assert_err!(fetched, Error::NotFound(Entity::Message));
    let fetched = chat
        .message(alice.id, other.id, first.message.id)
        .await
        .unwrap();
    assert_eq!(fetched, first.message);
}

pub async fn message_input_is_validated(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    let max = chat.config().max_body_chars;
    let invalid = [
        (NewMessage::text(""), "body"),
        (NewMessage::text(" \n\t"), "body"),
        (NewMessage::text("x".repeat(max + 1)), "body"),
        (NewMessage::text("x").with_txn_id(""), "txn_id"),
        (NewMessage::text("x").with_txn_id("has space"), "txn_id"),
        (NewMessage::text("x").with_txn_id("t".repeat(129)), "txn_id"),
        (
            NewMessage {
                metadata: Some(serde_json::json!({ "blob": "b".repeat(9000) })),
                ..NewMessage::text("x")
            },
            "metadata",
        ),
        (
            NewMessage::text("x").replying_to(MessageId(uuid::Uuid::from_u128(7))),
            "reply_to",
        ),
    ];
    for (new, expected) in invalid {
        match chat.send(alice.id, room.id, new).await {
            Err(Error::Invalid { field, .. }) => assert_eq!(field.name(), expected),
            other => panic!("expected invalid {expected}, got {other:?}"),
        }
    }
    // Exactly the limit is fine, and nothing invalid was stored.
    let longest = chat
        .send(alice.id, room.id, NewMessage::text("é".repeat(max)))
        .await
        .unwrap();
    assert_eq!(longest.message.seq, 1);
    let unknown = crate::RoomId(uuid::Uuid::from_u128(u128::MAX));
    assert_err!(
        chat.send(alice.id, unknown, NewMessage::text("x")).await,
        Error::NotFound(Entity::Room)
    );
}

pub async fn non_members_cannot_read_or_post(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let mallory = chat.new_user("mallory").await;
    let private = crate::NewRoom {
        visibility: crate::Visibility::Private,
        ..crate::NewRoom::named("secret")
    };
    let room = chat.create_room(alice.id, private).await.unwrap();
    let sent = chat
        .send(alice.id, room.id, NewMessage::text("secret"))
        .await
        .unwrap();
    assert_err!(
        chat.history(mallory.id, room.id, HistoryQuery::default())
            .await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.message(mallory.id, room.id, sent.message.id).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.changes(mallory.id, room.id, 0, None).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.read_state(mallory.id, room.id).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.mark_read(mallory.id, room.id, 1).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.typing(mallory.id, room.id, true).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.edit_message(mallory.id, room.id, sent.message.id, "mine")
            .await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.delete_message(mallory.id, room.id, sent.message.id)
            .await,
        Error::Forbidden(_)
    );
    // Reading a public room's history also needs membership.
    let public = chat.new_room(&alice, "public").await;
    assert_err!(
        chat.history(mallory.id, public.id, HistoryQuery::default())
            .await,
        Error::Forbidden(_)
    );
    assert_eq!(
        chat.message(alice.id, room.id, sent.message.id)
            .await
            .unwrap()
            .body,
        "secret"
    );
}

pub async fn posting_to_an_open_room_joins_implicitly(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "open").await;
    chat.send(alice.id, room.id, NewMessage::text("welcome"))
        .await
        .unwrap();
    let sent = chat
        .send(bob.id, room.id, NewMessage::text("drive-by"))
        .await
        .unwrap();
    assert_eq!(sent.message.seq, 2);
    let member = chat.member(alice.id, room.id, bob.id).await.unwrap();
    assert_eq!(member.role, Role::Member);
    assert_eq!(member.last_read_seq, 2, "the sender has read what it sent");
    assert_eq!(
        chat.history(bob.id, room.id, HistoryQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

pub async fn txn_id_makes_send_idempotent(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let first = chat
        .send(
            alice.id,
            room.id,
            NewMessage::text("once").with_txn_id("t-1"),
        )
        .await
        .unwrap();
    let again = chat
        .send(
            alice.id,
            room.id,
            NewMessage::text("once").with_txn_id("t-1"),
        )
        .await
        .unwrap();
    assert!(first.created);
    assert!(!again.created);
    assert_eq!(again.message, first.message);
    // Transaction ids are per sender.
    let bobs = chat
        .send(bob.id, room.id, NewMessage::text("once").with_txn_id("t-1"))
        .await
        .unwrap();
    assert!(bobs.created);
    assert_eq!(bobs.message.seq, 2);
    let history = chat
        .history(alice.id, room.id, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.items.len(), 2);
    assert_eq!(first.message.txn_id.as_deref(), Some("t-1"));
}

pub async fn txn_id_reused_with_other_content_conflicts(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    let other = chat.new_room(&alice, "other").await;
    chat.send(
        alice.id,
        room.id,
        NewMessage::text("first").with_txn_id("t"),
    )
    .await
    .unwrap();
    assert_err!(
        chat.send(
            alice.id,
            room.id,
            NewMessage::text("second").with_txn_id("t")
        )
        .await,
        Error::Conflict(Conflict::TxnIdReused)
    );
    assert_err!(
        chat.send(
            alice.id,
            other.id,
            NewMessage::text("first").with_txn_id("t")
        )
        .await,
        Error::Conflict(Conflict::TxnIdReused)
    );
    assert_eq!(chat.room(alice.id, room.id).await.unwrap().last_seq, 1);
    assert_eq!(chat.room(alice.id, other.id).await.unwrap().last_seq, 0);
}

pub async fn replies_must_be_in_the_same_room(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    let other = chat.new_room(&alice, "other").await;
    let question = chat
        .send(alice.id, room.id, NewMessage::text("q?"))
        .await
        .unwrap()
        .message;
    let elsewhere = chat
        .send(alice.id, other.id, NewMessage::text("x"))
        .await
        .unwrap()
        .message;
    let answer = chat
        .send(
            alice.id,
            room.id,
            NewMessage::text("a!").replying_to(question.id),
        )
        .await
        .unwrap();
    assert_eq!(answer.message.reply_to, Some(question.id));
    assert_err!(
        chat.send(
            alice.id,
            room.id,
            NewMessage::text("a").replying_to(elsewhere.id)
        )
        .await,
        Error::Invalid {
            field: Field::ReplyTo,
            ..
        }
    );
}

pub async fn only_the_sender_edits(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let sent = chat
        .send(bob.id, room.id, NewMessage::text("helo"))
        .await
        .unwrap()
        .message;
    assert_err!(
        chat.edit_message(alice.id, room.id, sent.id, "owner can't")
            .await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.edit_message(bob.id, room.id, sent.id, " ").await,
        Error::Invalid {
            field: Field::Body,
            ..
        }
    );
    chat.clock.advance(chrono::TimeDelta::seconds(3));
    let edited = chat
        .edit_message(bob.id, room.id, sent.id, "hello")
        .await
        .unwrap();
    assert_eq!(edited.body, "hello");
    assert_eq!(edited.seq, sent.seq);
    assert_eq!(edited.created_at, sent.created_at);
    assert_eq!(
        edited.edited_at,
        Some(sent.created_at + chrono::TimeDelta::seconds(3))
    );
    assert!(edited.change_id > sent.change_id);
    assert_eq!(
        chat.message(alice.id, room.id, sent.id).await.unwrap(),
        edited
    );
    let unknown = MessageId(uuid::Uuid::from_u128(u128::MAX));
    assert_err!(
        chat.edit_message(bob.id, room.id, unknown, "x").await,
        Error::NotFound(Entity::Message)
    );
}

pub async fn sender_or_managers_delete_leaving_a_tombstone(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    chat.join_room(carol.id, room.id, None).await.unwrap();
    let with_meta = NewMessage {
        metadata: Some(serde_json::json!({"k": 1})),
        ..NewMessage::text("one")
    };
    let one = chat.send(bob.id, room.id, with_meta).await.unwrap().message;
    let two = chat
        .send(bob.id, room.id, NewMessage::text("two"))
        .await
        .unwrap()
        .message;
    let three = chat
        .send(bob.id, room.id, NewMessage::text("three"))
        .await
        .unwrap()
        .message;
    assert_err!(
        chat.delete_message(carol.id, room.id, one.id).await,
        Error::Forbidden(_)
    );
    let tomb = chat.delete_message(bob.id, room.id, one.id).await.unwrap();
    assert!(tomb.is_deleted());
    assert_eq!((tomb.body.as_str(), tomb.metadata.as_ref()), ("", None));
    chat.delete_message(alice.id, room.id, two.id)
        .await
        .unwrap();
    assert_err!(
        chat.delete_message(alice.id, room.id, two.id).await,
        Error::NotFound(Entity::Message)
    );
    assert_err!(
        chat.edit_message(bob.id, room.id, one.id, "resurrect")
            .await,
        Error::NotFound(Entity::Message)
    );
    let history = chat
        .history(carol.id, room.id, HistoryQuery::default())
        .await
        .unwrap();
    let seqs: Vec<_> = history
        .items
        .iter()
        .map(|m| (m.seq, m.is_deleted()))
        .collect();
    assert_eq!(
        seqs,
        [(1, true), (2, true), (3, false)],
        "tombstones keep the sequence gapless"
    );
    assert_eq!(history.items[2], three);
    let next = chat
        .send(bob.id, room.id, NewMessage::text("four"))
        .await
        .unwrap();
    assert_eq!(next.message.seq, 4);
}

pub async fn history_pages_before_and_after(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    for i in 1..=10 {
        chat.send(alice.id, room.id, NewMessage::text(format!("m{i}")))
            .await
            .unwrap();
    }
    let seqs =
        |page: &crate::Page<crate::Message>| page.items.iter().map(|m| m.seq).collect::<Vec<_>>();
    let newest = chat
        .history(alice.id, room.id, HistoryQuery::newest(3))
        .await
        .unwrap();
    assert_eq!((seqs(&newest), newest.has_more()), (vec![8, 9, 10], true));
    let older = chat
        .history(alice.id, room.id, HistoryQuery::before(8, 3))
        .await
        .unwrap();
    assert_eq!((seqs(&older), older.has_more()), (vec![5, 6, 7], true));
    let oldest = chat
        .history(alice.id, room.id, HistoryQuery::before(3, 3))
        .await
        .unwrap();
    assert_eq!((seqs(&oldest), oldest.has_more()), (vec![1, 2], false));
    let after = chat
        .history(alice.id, room.id, HistoryQuery::after(2, 3))
        .await
        .unwrap();
    assert_eq!((seqs(&after), after.has_more()), (vec![3, 4, 5], true));
    let tail = chat
        .history(alice.id, room.id, HistoryQuery::after(7, 3))
        .await
        .unwrap();
    assert_eq!((seqs(&tail), tail.has_more()), (vec![8, 9, 10], false));
    let end = chat
        .history(alice.id, room.id, HistoryQuery::after(10, 3))
        .await
        .unwrap();
    assert_eq!((seqs(&end), end.has_more()), (vec![], false));
    let between = HistoryQuery {
        after: Some(3),
        before: Some(6),
        limit: Some(10),
    };
    let between = chat.history(alice.id, room.id, between).await.unwrap();
    assert_eq!((seqs(&between), between.has_more()), (vec![4, 5], false));
    let all = chat
        .history(alice.id, room.id, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!((all.items.len(), all.has_more()), (10, false));
    assert_eq!(all.items[0].body, "m1");
}

pub async fn history_limit_is_validated(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    for limit in [0, chat.config().max_page_size + 1, u32::MAX] {
        assert_err!(
            chat.history(alice.id, room.id, HistoryQuery::newest(limit))
                .await,
            Error::Invalid {
                field: Field::Limit,
                ..
            }
        );
    }
    let empty = chat
        .history(alice.id, room.id, HistoryQuery::before(u64::MAX, 5))
        .await
        .unwrap();
    assert!(empty.items.is_empty() && !empty.has_more());
}

pub async fn changes_include_edits_and_deletes_in_order(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    let mut ids = Vec::new();
    for i in 1..=3 {
        let sent = chat
            .send(alice.id, room.id, NewMessage::text(format!("m{i}")))
            .await
            .unwrap();
        ids.push(sent.message.id);
    }
    let seen = chat.changes(alice.id, room.id, 0, None).await.unwrap();
    assert_eq!(seen.items.len(), 3);
    assert!(!seen.has_more());
    // Caught up: the client goes on from the last change it applied.
    let cursor = seen.items.last().unwrap().change_id;

    // While the client is away: edit m1, delete m2, send m4, edit m1 again.
    chat.edit_message(alice.id, room.id, ids[0], "m1 edited")
        .await
        .unwrap();
    chat.delete_message(alice.id, room.id, ids[1])
        .await
        .unwrap();
    chat.send(alice.id, room.id, NewMessage::text("m4"))
        .await
        .unwrap();
    chat.edit_message(alice.id, room.id, ids[0], "m1 final")
        .await
        .unwrap();

    let missed = chat.changes(alice.id, room.id, cursor, None).await.unwrap();
    let view: Vec<_> = missed
        .items
        .iter()
        .map(|m| (m.seq, m.body.as_str(), m.is_deleted()))
        .collect();
    assert_eq!(
        view,
        [(2, "", true), (4, "m4", false), (1, "m1 final", false)]
    );
    let cursors: Vec<_> = missed.items.iter().map(|m| m.change_id).collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(missed.next_cursor, None, "caught up");
    let caught_up = *cursors.last().unwrap();
    assert_eq!(
        chat.room(alice.id, room.id).await.unwrap().last_change,
        caught_up
    );

    let paged = chat
        .changes(alice.id, room.id, cursor, Some(2))
        .await
        .unwrap();
    assert_eq!(paged.items.len(), 2);
    assert!(paged.has_more());
    let rest = chat
        .changes(alice.id, room.id, paged.next_cursor.unwrap(), Some(2))
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert!(!rest.has_more());
    let none = chat
        .changes(alice.id, room.id, caught_up, None)
        .await
        .unwrap();
    assert!(none.items.is_empty());
    assert_eq!(none.next_cursor, None);
}

pub async fn metadata_round_trips(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    let metadata = serde_json::json!({
        "kind": "poll",
        "options": ["a", "b", {"nested": [1, 2.5, null, true]}],
        "unicode": "héllo ✓",
    });
    let new = NewMessage {
        metadata: Some(metadata.clone()),
        ..NewMessage::text("multi\nline ✓ body")
    };
    let sent = chat.send(alice.id, room.id, new).await.unwrap().message;
    let read = chat.message(alice.id, room.id, sent.id).await.unwrap();
    assert_eq!(read.metadata, Some(metadata));
    assert_eq!(read.body, "multi\nline ✓ body");
    assert_eq!(read, sent);
}

pub async fn invisible_text_is_refused(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    // Zero-width space, byte-order mark, word joiner, right-to-left mark: nothing to see.
    let invisible = "\u{200B}\u{FEFF} \u{2060}\u{200F}";
    assert_err!(
        chat.send(alice.id, room.id, NewMessage::text(invisible))
            .await,
        Error::Invalid {
            field: Field::Body,
            ..
        }
    );
    assert_err!(
        chat.create_room(alice.id, crate::NewRoom::named(invisible))
            .await,
        Error::Invalid {
            field: Field::Name,
            ..
        }
    );
    let rename = crate::UserUpdate {
        display_name: Some(invisible.into()),
        ..Default::default()
    };
    assert_err!(
        chat.update_user(alice.id, alice.id, rename).await,
        Error::Invalid {
            field: Field::DisplayName,
            ..
        }
    );
    // A right-to-left override disguises an address.
    let disguised = crate::UserUpdate {
        email: Some(Some("alice@\u{202E}moc.elpmaxe".into())),
        ..Default::default()
    };
    assert_err!(
        chat.update_user(alice.id, alice.id, disguised).await,
        Error::Invalid {
            field: Field::Email,
            ..
        }
    );
    // Visible text with such characters inside is kept as written.
    let joined = "👩\u{200D}💻 ok";
    let sent = chat
        .send(alice.id, room.id, NewMessage::text(joined))
        .await
        .unwrap();
    assert_eq!(sent.message.body, joined);
}

pub async fn transaction_ids_are_the_senders_alone(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let mut alices_feed = chat.subscribe(alice.id).await.unwrap();
    let mut bobs_feed = chat.subscribe(bob.id).await.unwrap();
    let new = NewMessage {
        txn_id: Some("client-1".into()),
        ..NewMessage::text("hi")
    };
    let sent = chat.send(alice.id, room.id, new).await.unwrap().message;
    let txn = Some("client-1".to_owned());
    assert_eq!(sent.txn_id, txn);
    // Alice sees it wherever she reads her message; Bob nowhere.
    let read = |viewer: crate::UserId| {
        let chat = std::sync::Arc::clone(&chat.chat);
        async move {
            let one = chat.message(viewer, room.id, sent.id).await.unwrap();
            let history = chat
                .history(viewer, room.id, HistoryQuery::default())
                .await
                .unwrap();
            let changes = chat.changes(viewer, room.id, 0, None).await.unwrap();
            [
                one.txn_id,
                history.items[0].txn_id.clone(),
                changes.items[0].txn_id.clone(),
            ]
        }
    };
    assert_eq!(
        read(alice.id).await,
        [txn.clone(), txn.clone(), txn.clone()]
    );
    assert_eq!(read(bob.id).await, [None, None, None]);
    let live = |event: Option<std::sync::Arc<crate::events::Event>>| match event.as_deref() {
        Some(crate::events::Event::MessageCreated { message }) => message.txn_id.clone(),
        other => panic!("expected message.created, got {other:?}"),
    };
    let next_message = async |feed: &mut crate::events::Subscription| loop {
        let event = super::events::next(feed).await;
        if matches!(
            event.as_deref(),
            Some(crate::events::Event::MessageCreated { .. })
        ) {
            return event;
        }
    };
    assert_eq!(live(next_message(&mut alices_feed).await), txn);
    assert_eq!(live(next_message(&mut bobs_feed).await), None);
    let unread = chat
        .unread_messages(bob.id, None, None)
        .await
        .unwrap()
        .items;
    assert_eq!(unread[0].txn_id, None);
}

pub async fn reactions_are_members_own_and_on_every_message_returned(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let eve = chat.new_user("eve").await;
    let room = chat.new_room(&alice, "reacting").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let mut bob_feed = chat.subscribe(bob.id).await.unwrap();
    let sent = chat
        .send(alice.id, room.id, NewMessage::text("lunch?"))
        .await
        .unwrap()
        .message;
    let plain = chat
        .send(alice.id, room.id, NewMessage::text("no reactions here"))
        .await
        .unwrap()
        .message;

    let mine = chat.add_reaction(alice.id, room.id, sent.id, "🍕").await;
    let mine = mine.unwrap();
    let pizza = |count, me| {
        vec![Reaction {
            key: "🍕".into(),
            count,
            me,
        }]
    };
    assert_eq!(mine.reactions, pizza(1, true));
    let again = chat.add_reaction(alice.id, room.id, sent.id, "🍕").await;
    assert_eq!(
        again.unwrap().reactions,
        pizza(1, true),
        "adding again changes nothing"
    );
    let theirs = chat.add_reaction(bob.id, room.id, sent.id, "🍕").await;
    assert_eq!(theirs.unwrap().reactions, pizza(2, true));

    // Every message returned carries them, as its reader sees them.
    let history = chat
        .history(alice.id, room.id, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.items[0].reactions, pizza(2, true));
    assert!(history.items[1].reactions.is_empty());
    let one = chat.message(bob.id, room.id, sent.id).await.unwrap();
    assert_eq!(one.reactions, pizza(2, true));
    let unread = chat.unread_messages(bob.id, None, None).await.unwrap();
    assert_eq!(unread.items.len(), 2, "reacting reads nothing");
    assert_eq!(unread.items[0].reactions, pizza(2, true));
    let changes = chat.changes(bob.id, room.id, plain.change_id, None).await;
    let changes = changes.unwrap().items;
    assert_eq!(
        changes.len(),
        1,
        "the reactions moved the message along the change feed"
    );
    assert_eq!(
        (changes[0].id, &changes[0].reactions),
        (sent.id, &pizza(2, true))
    );
    let edited = chat
        .edit_message(alice.id, room.id, sent.id, "lunch at 1?")
        .await;
    assert_eq!(edited.unwrap().reactions, pizza(2, true));

    // Taking one back; taking back what is not there changes nothing.
    let removed = chat.remove_reaction(alice.id, room.id, sent.id, "🍕").await;
    assert_eq!(removed.unwrap().reactions, pizza(1, false));
    let nothing = chat.remove_reaction(alice.id, room.id, sent.id, "🍕").await;
    assert_eq!(nothing.unwrap().reactions, pizza(1, false));

    // Who may, and what.
    assert_err!(
        chat.add_reaction(eve.id, room.id, sent.id, "👀").await,
        Error::Forbidden(Denied::NotMember)
    );
    for key in ["", "\n", &"x".repeat(65)] {
        assert_err!(
            chat.add_reaction(alice.id, room.id, sent.id, key).await,
            Error::Invalid {
                field: Field::ReactionKey,
                ..
            }
        );
    }
    let elsewhere = chat.new_room(&alice, "elsewhere").await;
    assert_err!(
        chat.add_reaction(alice.id, elsewhere.id, sent.id, "👀")
            .await,
        Error::NotFound(Entity::Message)
    );
    chat.delete_message(alice.id, room.id, plain.id)
        .await
        .unwrap();
    assert_err!(
        chat.add_reaction(alice.id, room.id, plain.id, "👀").await,
        Error::NotFound(Entity::Message)
    );

    // Bob heard each change once, after the message it is on.
    let heard: Vec<_> = super::events::drain(&mut bob_feed).await;
    let reactions: Vec<_> = heard
        .iter()
        .filter_map(|event| match &**event {
            crate::events::Event::ReactionAdded { reaction } => Some(("+", reaction)),
            crate::events::Event::ReactionRemoved { reaction } => Some(("-", reaction)),
            _ => None,
        })
        .map(|(sign, r)| (sign, r.user_id, r.message_id, r.key.as_str()))
        .collect();
    assert_eq!(
        reactions,
        [
            ("+", alice.id, sent.id, "🍕"),
            ("+", bob.id, sent.id, "🍕"),
            ("-", alice.id, sent.id, "🍕"),
        ]
    );
    let created = heard.iter().position(|e| e.name() == "message.created");
    let first_reaction = heard.iter().position(|e| e.name() == "reaction.added");
    assert!(created < first_reaction);
}

pub async fn threads_and_mentions_through_the_engine(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let eve = chat.new_user("eve").await;
    let room = chat.new_room(&alice, "threads").await;
    for user in [&bob, &carol] {
        chat.join_room(user.id, room.id, None).await.unwrap();
    }
    let root = chat
        .send(alice.id, room.id, NewMessage::text("plans?"))
        .await
        .unwrap()
        .message;
    // Bob replies mentioning carol, eve (no member) and himself twice: carol alone is kept.
    let new = NewMessage::text("friday")
        .in_thread(root.id)
        .mentioning(carol.id)
        .mentioning(eve.id)
        .mentioning(bob.id)
        .mentioning(carol.id);
    let reply = chat.send(bob.id, room.id, new).await.unwrap().message;
    assert_eq!(reply.thread_root, Some(root.id));
    assert_eq!(reply.mentions, [carol.id]);

    // Alice (the root's sender) and carol (mentioned) follow; both see one unread reply.
    for user in [&alice, &carol] {
        let summary = chat.unread_summary(user.id).await.unwrap();
        assert_eq!(summary.threads, 1, "{}", user.username);
    }
    let carols = chat.read_state(carol.id, room.id).await.unwrap();
    assert_eq!((carols.unread, carols.mentions, carols.threads), (2, 1, 1));
    let summary = chat.unread_summary(carol.id).await.unwrap();
    assert_eq!((summary.total, summary.mentions), (2, 1));
    let threads = chat.threads(alice.id, room.id, None, None).await.unwrap();
    assert_eq!(threads.items.len(), 1);
    assert_eq!(threads.items[0].unread, 1);
    let thread = threads.items[0].root.thread.clone().unwrap();
    assert_eq!(
        (thread.reply_count, thread.participants.clone()),
        (1, vec![bob.id])
    );
    let replies = chat.thread_replies(carol.id, room.id, root.id, HistoryQuery::default());
    assert_eq!(
        replies.await.unwrap().items,
        vec![reply.clone().seen_by(carol.id)]
    );
    let mentions = chat.mentions(carol.id, None, None).await.unwrap();
    assert_eq!(
        mentions.items.iter().map(|m| m.id).collect::<Vec<_>>(),
        [reply.id]
    );
    assert_eq!(
        chat.mark_thread_read(alice.id, room.id, root.id, reply.seq)
            .await
            .unwrap(),
        0
    );
    assert_eq!(chat.unread_summary(alice.id).await.unwrap().threads, 0);
    let read = chat.mark_read(carol.id, room.id, reply.seq).await.unwrap();
    assert_eq!(read.mentions, 0, "the read marker passed the mention");

    // The rules: a thread's root; the whole room for managers; a bounded mention list.
    assert_err!(
        chat.send(bob.id, room.id, NewMessage::text("x").in_thread(reply.id))
            .await,
        Error::Invalid {
            field: Field::ThreadRoot,
            ..
        }
    );
    let everyone = NewMessage {
        mentions_room: true,
        ..NewMessage::text("all hands")
    };
    assert_err!(
        chat.send(bob.id, room.id, everyone.clone()).await,
        Error::Forbidden(Denied::NotManager)
    );
    chat.send(alice.id, room.id, everyone).await.unwrap();
    assert_eq!(chat.read_state(bob.id, room.id).await.unwrap().mentions, 1);
    let many = NewMessage {
        mentions: vec![carol.id; chat.config().max_mentions + 1],
        ..NewMessage::text("crowd")
    };
    assert_err!(
        chat.send(alice.id, room.id, many).await,
        Error::Invalid {
            field: Field::Mentions,
            ..
        }
    );
    assert_err!(
        chat.mark_thread_read(eve.id, room.id, root.id, 1).await,
        Error::Forbidden(Denied::NotMember)
    );
    assert_err!(
        chat.mark_thread_read(alice.id, room.id, reply.id, 1).await,
        Error::NotFound(Entity::Thread)
    );
}
