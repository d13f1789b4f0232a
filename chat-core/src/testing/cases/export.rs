//! Export: every kind of data a store holds, read back in order, as JSON Lines.

use std::ops::RangeInclusive;
use std::sync::Arc;

use crate::export::{FORMAT, Record, VERSION, export};
use crate::store::{SeqRange, ThreadMarker};
use crate::testing::{Harness, epoch};
use crate::{NewMessage, NewRoom, NewUser, Role, RoomId, UserId, Visibility};

pub async fn export_writes_every_record_in_order(h: Harness) {
    let chat = h.chat().await;
    let alice = chat
        .register(NewUser::named("alice"), "alice's password 1")
        .await
        .unwrap();
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let private = NewRoom {
        visibility: Visibility::Private,
        password: Some("open sesame".into()),
        ..NewRoom::named("private")
    };
    let room = chat.create_room(alice.id, private).await.unwrap();
    for user in [&bob, &carol] {
        chat.add_member(alice.id, room.id, user.id, Role::Member)
            .await
            .unwrap();
    }
    let send = |from: UserId, new: NewMessage| {
        let chat = chat.chat.clone();
        async move { chat.send(from, room.id, new).await.unwrap().message }
    };
    let root = send(alice.id, NewMessage::text("root").with_txn_id("t-1")).await;
    let reply = NewMessage::text("reply")
        .in_thread(root.id)
        .mentioning(carol.id);
    let reply = send(bob.id, reply).await;
    let edited = send(carol.id, NewMessage::text("typo").replying_to(root.id)).await;
    chat.edit_message(carol.id, room.id, edited.id, "fixed")
        .await
        .unwrap();
    let gone = send(alice.id, NewMessage::text("gone")).await;
    chat.delete_message(alice.id, room.id, gone.id)
        .await
        .unwrap();
    // Key order and user order disagree: the export orders by key first.
    for (user, key) in [(&carol, "👍"), (&bob, "👍"), (&carol, "+1")] {
        chat.add_reaction(user.id, room.id, root.id, key)
            .await
            .unwrap();
    }
    chat.mark_read(bob.id, room.id, 2).await.unwrap();
    let direct = chat.send_direct(bob.id, carol.id, NewMessage::text("psst"));
    let direct = direct.await.unwrap().message.room_id;

    let mut out = Vec::new();
    let totals = export(&*chat.store, "test", epoch(), &mut out, |_| {})
        .await
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let records: Vec<Record> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();

    assert_eq!(
        records[0],
        Record::Header {
            format: FORMAT.into(),
            version: VERSION,
            source: "test".into(),
            exported_at: epoch(),
        }
    );
    let users: Vec<_> = records
        .iter()
        .filter_map(|r| match r {
            Record::User {
                user,
                password_hash,
            } => Some((user.id, password_hash.is_some())),
            _ => None,
        })
        .collect();
    assert_eq!(
        users,
        [(alice.id, true), (bob.id, false), (carol.id, false)]
    );

    // Each room: itself, its members, its messages in order with their reactions, its thread
    // markers; nothing of another room in between.
    let mut rooms = vec![room.id, direct];
    rooms.sort_by_key(|id| *id.0.as_bytes());
    let mut at = 1 + users.len();
    for id in rooms {
        let stored = chat.store.room(id).await.unwrap().unwrap();
        let Record::Room {
            room: written,
            password_hash,
        } = &records[at]
        else {
            panic!("a room at line {at}: {:?}", records[at]);
        };
        assert_eq!(written.id, id);
        assert_eq!(password_hash, &stored.password_hash);
        assert_eq!(password_hash.is_some(), id == room.id);
        at += 1;
        let mut members = Vec::new();
        while let Some(Record::Member { member }) = records.get(at) {
            members.push(member.clone());
            at += 1;
        }
        let stored_members = chat
            .store
            .members(id, &crate::store::MemberQuery::ALL)
            .await;
        assert_eq!(members, stored_members.unwrap());
        let mut messages = Vec::new();
        let mut reactions = Vec::new();
        let mut mentions = Vec::new();
        loop {
            match records.get(at) {
                Some(Record::Message { message, mentioned }) => {
                    messages.push(message.clone());
                    mentions.push((message.seq, mentioned.clone()));
                }
                Some(Record::Reaction {
                    room_id,
                    seq,
                    key,
                    user_id,
                }) => {
                    assert_eq!(*room_id, id);
                    reactions.push((*seq, key.clone(), *user_id));
                }
                _ => break,
            }
            at += 1;
        }
        let range = SeqRange {
            before: None,
            after: Some(0),
            limit: 100,
        };
        assert_eq!(messages, chat.store.messages(id, range).await.unwrap());
        let mut markers = Vec::new();
        while let Some(Record::ThreadMarker { room_id, marker }) = records.get(at) {
            assert_eq!(*room_id, id);
            markers.push(*marker);
            at += 1;
        }
        if id == room.id {
            let expected = vec![
                (root.seq, "+1".to_owned(), carol.id),
                (root.seq, "👍".to_owned(), bob.id),
                (root.seq, "👍".to_owned(), carol.id),
            ];
            assert_eq!(reactions, expected, "by sequence number, key, then user");
            let mentioned = mentions.iter().filter(|(_, users)| !users.is_empty());
            let mentioned: Vec<_> = mentioned.cloned().collect();
            assert_eq!(
                mentioned,
                [(reply.seq, vec![carol.id])],
                "whom mentions count for"
            );
            let edited = messages.iter().find(|m| m.id == edited.id).unwrap();
            assert_eq!(
                (edited.body.as_str(), edited.edited_at.is_some()),
                ("fixed", true)
            );
            assert!(messages.iter().any(|m| m.id == gone.id && m.is_deleted()));
            assert_eq!(messages[0].txn_id.as_deref(), Some("t-1"));
            let mut followers = vec![alice.id, bob.id, carol.id];
            followers.sort();
            let expected: Vec<ThreadMarker> = followers
                .into_iter()
                .map(|user| ThreadMarker {
                    root_seq: root.seq,
                    user,
                    read: u64::from(user == bob.id),
                    following: true,
                })
                .collect();
            assert_eq!(markers, expected, "by root, then user");
        } else {
            assert!(reactions.is_empty() && markers.is_empty());
        }
    }
    assert_eq!(
        records.get(at),
        Some(&Record::End { totals }),
        "the totals last"
    );
    assert_eq!(at + 1, records.len(), "nothing after the end");
    assert_eq!(
        (totals.users, totals.rooms, totals.members, totals.messages),
        (3, 2, 3 + 2, 4 + 1)
    );
    assert_eq!((totals.reactions, totals.thread_markers), (3, 3));
    assert_eq!(
        totals.to_string(),
        "3 users, 2 rooms, 5 members, 5 messages, 3 reactions, 3 thread markers"
    );
    let unknown = RoomId(uuid::Uuid::from_u128(404));
    assert!(
        chat.store
            .reactors(unknown, 1..=10)
            .await
            .unwrap()
            .is_empty()
    );
    // The root (1) holds the reactions and the reply (2) the mention; a range past them holds
    // none, and so does an empty one (3..=1 is not 1..=3).
    let held = |seqs: RangeInclusive<u64>| {
        let store = Arc::clone(&chat.store);
        async move {
            let mentions = store.mentions_between(room.id, seqs.clone()).await.unwrap();
            let reactors = store.reactors(room.id, seqs).await.unwrap();
            (mentions.len(), reactors.len())
        }
    };
    assert_eq!(held(1..=2).await, (1, 3));
    assert_eq!(held(3..=9).await, (0, 0));
    assert_eq!(
        held(RangeInclusive::new(3, 1)).await,
        (0, 0),
        "an empty range"
    );
    assert!(chat.store.thread_markers(unknown).await.unwrap().is_empty());
}
