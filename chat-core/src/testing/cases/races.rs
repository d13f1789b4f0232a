//! Races: what must hold when many callers act at once.

use std::collections::HashSet;
use std::sync::Arc;

use crate::auth::LoginName;
use crate::testing::Harness;
use crate::{Conflict, Error, HistoryQuery, NewMessage, NewRoom, NewUser};

pub async fn concurrent_sends_are_gapless_and_ordered(h: Harness) {
    const SENDERS: usize = 16;
    const EACH: usize = 50;
    let chat = h.chat().await;
    let owner = chat.new_user("owner").await;
    let room = chat.new_room(&owner, "busy").await;
    let mut senders = Vec::new();
    for i in 0..SENDERS {
        let user = chat.new_user(&format!("sender{i}")).await;
        chat.join_room(user.id, room.id, None).await.unwrap();
        senders.push(user);
    }
    let tasks: Vec<_> = senders
        .iter()
        .enumerate()
        .map(|(i, user)| {
            let chat = Arc::clone(&chat.chat);
            let (user, room) = (user.id, room.id);
            tokio::spawn(async move {
                let mut seqs = Vec::new();
                for j in 0..EACH {
                    let new = NewMessage::text(format!("{i}:{j}"));
                    seqs.push(chat.send(user, room, new).await.unwrap().message.seq);
                }
                seqs
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "a sender's order is kept"
        );
        all.extend(seqs);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (1..=(SENDERS * EACH) as u64).collect();
    assert_eq!(
        all, expected,
        "sequence numbers are 1..=800, no gap, no duplicate"
    );

    // History agrees: gapless, and each sender's messages in the order sent.
    let mut history = Vec::new();
    let mut before = None;
    loop {
        let page = HistoryQuery {
            before,
            limit: Some(200),
            ..HistoryQuery::default()
        };
        let page = chat.history(owner.id, room.id, page).await.unwrap();
        before = page.items.first().map(|m| m.seq);
        let more = page.has_more();
        history.splice(0..0, page.items);
        if !more {
            break;
        }
    }
    let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, expected);
    let mut next = [0usize; SENDERS];
    for message in &history {
        let (i, j) = message.body.split_once(':').unwrap();
        let (i, j): (usize, usize) = (i.parse().unwrap(), j.parse().unwrap());
        assert_eq!(next[i], j, "sender {i}'s messages are in its order");
        next[i] += 1;
    }
    assert_eq!(chat.room(owner.id, room.id).await.unwrap().last_seq, 800);
}

pub async fn two_joins_for_the_last_seat(h: Harness) {
    let chat = h.chat().await;
    let owner = chat.new_user("owner").await;
    for round in 0..10 {
        let small = NewRoom {
            capacity: Some(2),
            ..NewRoom::named(format!("round {round}"))
        };
        let room = chat.create_room(owner.id, small).await.unwrap();
        let a = chat.new_user(&format!("left{round}")).await;
        let b = chat.new_user(&format!("right{round}")).await;
        let join = |user: crate::UserId| {
            let chat = Arc::clone(&chat.chat);
            tokio::spawn(async move { chat.join_room(user, room.id, None).await })
        };
        let (first, second) = (join(a.id), join(b.id));
        let results = [first.await.unwrap(), second.await.unwrap()];
        let won = results.iter().filter(|r| r.is_ok()).count();
        let full = results
            .iter()
            .filter(|r| matches!(r, Err(Error::Conflict(Conflict::RoomFull))))
            .count();
        assert_eq!((won, full), (1, 1), "round {round}: {results:?}");
        let room = chat.room(owner.id, room.id).await.unwrap();
        assert_eq!(room.member_count, 2);
        assert_eq!(
            chat.members(owner.id, room.id, None, None)
                .await
                .unwrap()
                .items
                .len(),
            2
        );
    }
}

pub async fn concurrent_first_direct_messages_share_one_conversation(h: Harness) {
    let chat = h.chat().await;
    for round in 0..10 {
        let a = chat.new_user(&format!("left{round}")).await;
        let b = chat.new_user(&format!("right{round}")).await;
        let send = |from: crate::UserId, to: crate::UserId| {
            let chat = Arc::clone(&chat.chat);
            tokio::spawn(async move {
                chat.send_direct(from, to, NewMessage::text("first!"))
                    .await
                    .unwrap()
            })
        };
        let tasks = [
            send(a.id, b.id),
            send(b.id, a.id),
            send(a.id, b.id),
            send(b.id, a.id),
        ];
        let mut rooms = HashSet::new();
        for task in tasks {
            rooms.insert(task.await.unwrap().message.room_id);
        }
        assert_eq!(rooms.len(), 1, "round {round}: one conversation per pair");
        let room = *rooms.iter().next().unwrap();
        assert_eq!(
            chat.history(a.id, room, HistoryQuery::default())
                .await
                .unwrap()
                .items
                .len(),
            4
        );
        assert_eq!(
            chat.direct_conversations(a.id, None, None)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        assert_eq!(
            chat.direct_conversations(b.id, None, None)
                .await
                .unwrap()
                .items
                .len(),
            1
        );
        assert_eq!(
            chat.members(a.id, room, None, None)
                .await
                .unwrap()
                .items
                .len(),
            2
        );
    }
}

pub async fn concurrent_sends_with_one_txn_id_store_one_message(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let chat = Arc::clone(&chat.chat);
            let (user, room) = (alice.id, room.id);
            tokio::spawn(async move {
                let new = NewMessage::text("exactly once").with_txn_id("retry-42");
                chat.send(user, room, new).await.unwrap()
            })
        })
        .collect();
    let mut created = 0;
    let mut ids = HashSet::new();
    for task in tasks {
        let sent = task.await.unwrap();
        created += usize::from(sent.created);
        ids.insert(sent.message.id);
    }
    assert_eq!((created, ids.len()), (1, 1));
    let history = chat
        .history(alice.id, room.id, HistoryQuery::default())
        .await
        .unwrap();
    assert_eq!(history.items.len(), 1);
    assert_eq!(chat.room(alice.id, room.id).await.unwrap().last_seq, 1);
}

pub async fn concurrent_refreshes_rotate_once(h: Harness) {
    let chat = h.chat().await;
    chat.register(NewUser::named("alice"), "alice password")
        .await
        .unwrap();
    let login = chat
        .login(LoginName::Username("alice".into()), "alice password")
        .await
        .unwrap();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let chat = Arc::clone(&chat.chat);
            let token = login.tokens.refresh_token.clone();
            tokio::spawn(async move { chat.refresh(&token).await })
        })
        .collect();
    let mut pairs = Vec::new();
    for task in tasks {
        if let Ok(pair) = task.await.unwrap() {
            pairs.push(pair);
        }
    }
    // One refresh wins; the others are replays of a rotated token, which end the login.
    assert_eq!(pairs.len(), 1, "{} refreshes succeeded", pairs.len());
    for pair in &pairs {
        assert_err!(
            chat.authenticate(&pair.access_token).await,
            Error::Unauthenticated
        );
    }
}

pub async fn concurrent_sends_are_published_in_sequence_order(h: Harness) {
    let chat = h.chat().await;
    let owner = chat.new_user("owner").await;
    let room = chat.new_room(&owner, "busy").await;
    let mut feed = chat.subscribe(owner.id).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let user = chat.new_user(&format!("sender{i}")).await;
        chat.join_room(user.id, room.id, None).await.unwrap();
        let chat = Arc::clone(&chat.chat);
        tasks.push(tokio::spawn(async move {
            for j in 0..50 {
                let new = NewMessage::text(format!("{i}:{j}"));
                chat.send(user.id, room.id, new).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let published: Vec<u64> = super::events::drain(&mut feed)
        .await
        .iter()
        .filter_map(|event| match &**event {
            crate::events::Event::MessageCreated { message } => Some(message.seq),
            _ => None,
        })
        .collect();
    assert_eq!(
        published,
        (1..=400).collect::<Vec<u64>>(),
        "subscribers see sequence order"
    );
}

pub async fn members_leaving_at_once_keep_the_room_whole(h: Harness) {
    let chat = h.chat().await;
    let leave = |user: crate::UserId, room: crate::RoomId| {
        let chat = Arc::clone(&chat.chat);
        tokio::spawn(async move { chat.leave_room(user, room).await })
    };
    for round in 0..25 {
        // The owner and the only other member: both leaves succeed and the room is gone.
        let owner = chat.new_user(&format!("owner{round}")).await;
        let other = chat.new_user(&format!("other{round}")).await;
        let room = chat.new_room(&owner, &format!("pair {round}")).await;
        chat.join_room(other.id, room.id, None).await.unwrap();
        let (a, b) = (leave(owner.id, room.id), leave(other.id, room.id));
        let results = [a.await.unwrap(), b.await.unwrap()];
        assert!(
            results.iter().all(Result::is_ok),
            "round {round}: {results:?}"
        );
        assert_eq!(
            chat.store.room(room.id).await.unwrap(),
            None,
            "round {round}: the room went with its last member"
        );
        assert!(
            chat.rooms_of(other.id, other.id, None, None, None)
                .await
                .unwrap()
                .items
                .is_empty()
        );

        // The owner and its successor: the one who stays owns the room.
        let admin = chat.new_user(&format!("admin{round}")).await;
        let stays = chat.new_user(&format!("stays{round}")).await;
        let room = chat.new_room(&owner, &format!("trio {round}")).await;
        chat.add_member(owner.id, room.id, admin.id, crate::Role::Admin)
            .await
            .unwrap();
        chat.join_room(stays.id, room.id, None).await.unwrap();
        let (a, b) = (leave(owner.id, room.id), leave(admin.id, room.id));
        let results = [a.await.unwrap(), b.await.unwrap()];
        assert!(
            results.iter().all(Result::is_ok),
            "round {round}: {results:?}"
        );
        let room = chat.room(stays.id, room.id).await.unwrap();
        assert_eq!(room.owner, Some(stays.id), "round {round}");
        assert_eq!(room.member_count, 1, "round {round}");
        let members = chat
            .members(stays.id, room.id, None, None)
            .await
            .unwrap()
            .items;
        assert_eq!(members.len(), 1, "round {round}");
        assert_eq!(members[0].role, crate::Role::Owner, "round {round}");
    }
}
