//! The counter check: what it reads, and that a store's counters agree with its history.

use crate::check::{Problem, check, repair};
use crate::store::{Mention, RoomCounters, SeenCounters};
use crate::testing::Harness;
use crate::testing::fixture::every_kind_of_data;
use crate::{NewMessage, NewRoom, RoomId, ThreadSummary, UserId, Visibility};

pub async fn store_lists_every_room_by_id(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let public = chat.new_room(&alice, "public").await;
    let private = NewRoom {
        visibility: Visibility::Private,
        ..NewRoom::named("private")
    };
    let private = chat.create_room(alice.id, private).await.unwrap();
    let direct = chat.send_direct(alice.id, bob.id, NewMessage::text("hi"));
    let direct = direct.await.unwrap().message.room_id;
    let gone = chat.new_room(&alice, "gone").await;
    chat.delete_room(alice.id, gone.id).await.unwrap();

    let mut expected = vec![public.id, private.id, direct];
    expected.sort_by_key(|id| *id.0.as_bytes());
    let all = chat.store.list_rooms(None, 100).await.unwrap();
    let ids: Vec<RoomId> = all.iter().map(|room| room.id).collect();
    assert_eq!(ids, expected, "group and direct, public and private, by id");
    let mut paged = Vec::new();
    let mut after = None;
    while let Some(room) = chat.store.list_rooms(after, 1).await.unwrap().pop() {
        after = Some(room.id);
        paged.push(room.id);
    }
    assert_eq!(paged, expected, "one at a time, after the cursor");
}

pub async fn a_chat_with_every_kind_of_data_checks_clean(h: Harness) {
    let chat = h.chat().await;
    every_kind_of_data(&chat).await;

    let report = check(&*chat.store).await.unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
    assert_eq!((report.rooms, report.members, report.messages), (4, 10, 13));
}

async fn send_in(chat: &crate::testing::TestChat, room: RoomId, from: crate::UserId, text: &str) {
    chat.send(from, room, NewMessage::text(text)).await.unwrap();
}

pub async fn store_repair_counters_sets_them_only_if_unchanged(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "repaired").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    for text in ["one", "two"] {
        send_in(&chat, room.id, alice.id, text).await;
    }
    let third = chat.send(alice.id, room.id, NewMessage::text("three"));
    let third = third.await.unwrap().message;
    chat.mark_read(bob.id, room.id, 3).await.unwrap();
    let stored = chat.store.room(room.id).await.unwrap().unwrap();
    let seen = RoomCounters::of(&stored);
    assert_eq!((seen.last_seq, seen.member_count), (3, 2));
    let wrong = RoomCounters {
        last_seq: 2,
        last_change: 2,
        member_count: 7,
    };

    let stale = RoomCounters {
        last_seq: 9,
        ..seen
    };
    let done = chat
        .store
        .repair_counters(
            SeenCounters {
                room: room.id,
                counters: stale,
            },
            wrong,
        )
        .await;
    assert!(!done.unwrap(), "counters not as seen: nothing written");
    assert_eq!(chat.store.room(room.id).await.unwrap(), Some(stored));

    assert!(
        chat.store
            .repair_counters(
                SeenCounters {
                    room: room.id,
                    counters: seen
                },
                wrong
            )
            .await
            .unwrap()
    );
    let now = chat.store.room(room.id).await.unwrap().unwrap();
    assert_eq!(RoomCounters::of(&now), wrong);
    let bobs = chat.store.member(room.id, bob.id).await.unwrap().unwrap();
    assert_eq!(
        bobs.last_read_seq, 2,
        "a marker beyond last_seq comes back to it"
    );
    let alices = chat.store.member(room.id, alice.id).await.unwrap().unwrap();
    assert_eq!(alices.last_read_seq, 2);

    // What `check` finds in such a room, `repair` puts right.
    let report = check(&*chat.store).await.unwrap();
    let problems: Vec<_> = report.findings.iter().map(|f| &f.problem).collect();
    assert_eq!(
        problems,
        [
            &Problem::MemberCount {
                stored: 7,
                counted: 2
            },
            &Problem::ChangeCursor {
                message: third.id,
                change_id: 3,
                last_change: 2
            },
            &Problem::LastSeq {
                stored: 2,
                counted: 3
            },
        ]
    );
    let repaired = repair(&*chat.store).await.unwrap();
    assert!(repaired.is_repaired(), "{:#?}", repaired.findings);
    assert_eq!(repaired.repaired, 1);
    let now = chat.store.room(room.id).await.unwrap().unwrap();
    assert_eq!(RoomCounters::of(&now), seen);
    assert!(check(&*chat.store).await.unwrap().is_clean());
    let next = chat.send(bob.id, room.id, NewMessage::text("after the repair"));
    assert_eq!(next.await.unwrap().message.seq, 4);

    let unknown = RoomId(uuid::Uuid::from_u128(404));
    assert_err!(
        chat.store
            .repair_counters(
                SeenCounters {
                    room: unknown,
                    counters: seen
                },
                seen
            )
            .await,
        crate::StoreError::NotFound(crate::Entity::Room)
    );
}

pub async fn store_replace_unread_mentions_keeps_those_read(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "mentions").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let mut sent = Vec::new();
    for text in ["one", "two", "three"] {
        let new = NewMessage::text(text).mentioning(bob.id);
        sent.push(chat.send(alice.id, room.id, new).await.unwrap().message);
    }
    chat.mark_read(bob.id, room.id, sent[0].seq).await.unwrap();
    let unread = |chat: &crate::testing::TestChat| {
        let store = chat.store.clone();
        async move {
            let counts = store.unread_counts(bob.id, Some(room.id)).await.unwrap();
            counts.iter().map(|c| c.mentions).sum::<u64>()
        }
    };
    assert_eq!(unread(&chat).await, 2);
    let seen = RoomCounters::of(&chat.store.room(room.id).await.unwrap().unwrap());
    let third = [Mention {
        user: bob.id,
        seq: sent[2].seq,
        message: sent[2].id,
    }];

    let stale = RoomCounters {
        last_change: seen.last_change + 1,
        ..seen
    };
    let done = chat.store.replace_unread_mentions(
        SeenCounters {
            room: room.id,
            counters: stale,
        },
        &third,
    );
    assert!(
        !done.await.unwrap(),
        "counters not as seen: nothing written"
    );
    assert_eq!(unread(&chat).await, 2);

    let done = chat.store.replace_unread_mentions(
        SeenCounters {
            room: room.id,
            counters: seen,
        },
        &third,
    );
    assert!(done.await.unwrap());
    assert_eq!(unread(&chat).await, 1);
    let listed = chat.store.mentions(bob.id, None, 10).await.unwrap();
    let ids: Vec<_> = listed.iter().map(|m| m.id).collect();
    assert_eq!(
        ids,
        [sent[2].id, sent[0].id],
        "the read one stays, the second is gone"
    );

    let unknown = RoomId(uuid::Uuid::from_u128(404));
    assert_err!(
        chat.store
            .replace_unread_mentions(
                SeenCounters {
                    room: unknown,
                    counters: seen
                },
                &[]
            )
            .await,
        crate::StoreError::NotFound(crate::Entity::Room)
    );
}

pub async fn store_repair_thread_sets_a_summary_only_if_unchanged(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "threads").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let send = |from: UserId, new: NewMessage| {
        let chat = chat.chat.clone();
        async move { chat.send(from, room.id, new).await.unwrap().message }
    };
    let first = send(alice.id, NewMessage::text("first root")).await;
    let second = send(alice.id, NewMessage::text("second root")).await;
    let early = send(bob.id, NewMessage::text("early").in_thread(first.id)).await;
    send(bob.id, NewMessage::text("other").in_thread(second.id)).await;
    send(alice.id, NewMessage::text("late").in_thread(first.id)).await;
    let roots = || async {
        let threads = chat
            .store
            .threads(room.id, alice.id, None, 10)
            .await
            .unwrap();
        threads.into_iter().map(|t| t.root.id).collect::<Vec<_>>()
    };
    let summary = || async {
        let root = chat.store.message(first.id).await.unwrap().unwrap();
        root.thread
    };
    let right = summary().await.unwrap();
    assert_eq!(
        roots().await,
        [first.id, second.id],
        "the most recently active first"
    );

    let wrong = ThreadSummary {
        reply_count: 1,
        last_reply_seq: early.seq,
        last_reply_at: right.last_reply_at,
        participants: vec![bob.id],
    };
    let seen = RoomCounters::of(&chat.store.room(room.id).await.unwrap().unwrap());
    let stale = RoomCounters {
        last_change: seen.last_change + 1,
        ..seen
    };
    let done = chat.store.repair_thread(
        SeenCounters {
            room: room.id,
            counters: stale,
        },
        first.id,
        Some(&wrong),
    );
    assert!(
        !done.await.unwrap(),
        "counters not as seen: nothing written"
    );
    assert_eq!(summary().await.as_ref(), Some(&right));
    let done = chat.store.repair_thread(
        SeenCounters {
            room: room.id,
            counters: seen,
        },
        first.id,
        Some(&wrong),
    );
    assert!(done.await.unwrap());
    assert_eq!(summary().await, Some(wrong), "set as given");
    assert_eq!(
        roots().await,
        [second.id, first.id],
        "in its place by its newest reply"
    );
    // Alice has read 2 replies of a thread now said to have 1: none unread there, never fewer
    // (and the other thread's unread reply still counts).
    let counts = chat.store.unread_counts(alice.id, Some(room.id)).await;
    let threads: u64 = counts.unwrap().iter().map(|c| c.threads).sum();
    assert_eq!(threads, 1);
    let unknown = crate::MessageId(uuid::Uuid::from_u128(404));
    let missing = chat
        .store
        .repair_thread(
            SeenCounters {
                room: room.id,
                counters: seen,
            },
            unknown,
            None,
        )
        .await;
    assert_err!(missing, crate::StoreError::NotFound(crate::Entity::Message));

    let report = check(&*chat.store).await.unwrap();
    let found: Vec<&Problem> = report.findings.iter().map(|f| &f.problem).collect();
    let (stored, counted) = ((1, early.seq), (2, right.last_reply_seq));
    let root = first.id;
    assert_eq!(
        found,
        [&Problem::Thread {
            root,
            stored,
            counted
        }]
    );
    let report = repair(&*chat.store).await.unwrap();
    assert!(report.findings.iter().all(|f| f.repaired), "{report:#?}");
    assert_eq!(
        summary().await,
        Some(right),
        "the recount, participants included"
    );
    assert_eq!(roots().await, [first.id, second.id]);
    assert!(check(&*chat.store).await.unwrap().is_clean());
}
