//! The storage contract itself, checked on the store without the engine in between.

use std::ops::RangeInclusive;

use chrono::{DateTime, TimeDelta, Utc};

use crate::auth::TokenHash;
use crate::store::{
    Attempt, Departure, IssuedToken, MemberQuery, NewSession, NewStoredMessage, RoomQuery,
    Rotation, SeqRange, StoreResult, TokenExchange, TokenKind,
};
use crate::testing::{Harness, epoch};
use crate::{
    Conflict, Entity, Member, Message, MessageId, Profile, Role, Room, RoomId, RoomKind, SessionId,
    Status, StoreError, User, UserId, Visibility,
};

fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}

fn user(n: u128, name: &str) -> User {
    User {
        id: UserId(id(n)),
        username: name.into(),
        email: Some(format!("{name}@example.com")),
        display_name: name.to_uppercase(),
        profile: Profile::default(),
        status: Status::Offline,
        status_message: None,
        is_admin: false,
        created_at: epoch(),
        updated_at: epoch(),
    }
}

fn room(n: u128, capacity: Option<u32>) -> Room {
    Room {
        id: RoomId(id(n)),
        kind: RoomKind::Group,
        name: format!("room {n}"),
        topic: None,
        alias: Some(format!("room-{n}")),
        visibility: Visibility::Public,
        capacity,
        password_hash: None,
        owner: Some(UserId(id(1))),
        member_count: 1,
        last_seq: 0,
        last_change: 0,
        created_at: epoch(),
        updated_at: epoch(),
    }
}

fn member(room: &Room, user: u128, role: Role) -> Member {
    Member {
        room_id: room.id,
        user_id: UserId(id(user)),
        role,
        joined_at: epoch(),
        last_read_seq: 0,
    }
}

fn message(n: u128, room: &Room, sender: u128, txn_id: Option<&str>) -> NewStoredMessage {
    let text = format!("message {n}");
    NewStoredMessage {
        txn_id: txn_id.map(str::to_owned),
        ..NewStoredMessage::text(MessageId(id(n)), room.id, UserId(id(sender)), text, epoch())
    }
}

/// A store with users 1 and 2 and room 100 owned by user 1.
async fn seeded(
    h: &Harness,
) -> (
    std::sync::Arc<dyn crate::store::Store>,
    crate::testing::Guard,
    Room,
) {
    let (store, guard) = h.store().await;
    store.insert_user(&user(1, "one"), None).await.unwrap();
    store
        .insert_user(&user(2, "two"), Some("$hash"))
        .await
        .unwrap();
    let room = room(100, Some(2));
    store
        .create_room(&room, &member(&room, 1, Role::Owner))
        .await
        .unwrap();
    (store, guard, room)
}

pub async fn store_append_assigns_sequence_and_change_cursors(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    let first = store
        .append_message(&message(1, &room, 1, Some("t")))
        .await
        .unwrap();
    assert!(first.created);
    assert_eq!((first.message.seq, first.message.change_id), (1, 1));
    let second = store
        .append_message(&message(2, &room, 1, None))
        .await
        .unwrap();
    assert_eq!((second.message.seq, second.message.change_id), (2, 2));
    // The same sender and transaction id: the original, nothing new.
    let again = store
        .append_message(&message(3, &room, 1, Some("t")))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.message, first.message);
    assert!(store.message(MessageId(id(3))).await.unwrap().is_none());
    // Edits and deletes take the next change cursors; sequence numbers stay.
    let edited = store
        .edit_message(first.message.id, "edited", epoch())
        .await
        .unwrap();
    assert_eq!((edited.seq, edited.change_id), (1, 3));
    let deleted = store
        .delete_message(second.message.id, epoch())
        .await
        .unwrap();
    assert_eq!((deleted.seq, deleted.change_id), (2, 4));
    let stored = store.room(room.id).await.unwrap().unwrap();
    assert_eq!((stored.last_seq, stored.last_change), (2, 4));
    // The sender's read marker followed its own messages.
    let owner = store.member(room.id, UserId(id(1))).await.unwrap().unwrap();
    assert_eq!(owner.last_read_seq, 2);
    let changes = store.changes(room.id, 2, 10).await.unwrap();
    assert_eq!(changes.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2]);
    let range = SeqRange {
        before: None,
        after: None,
        limit: 10,
    };
    assert_eq!(
        store.messages(room.id, range).await.unwrap(),
        [edited, deleted]
    );
    assert!(matches!(
        store
            .append_message(&message(9, &self::room(999, None), 1, None))
            .await,
        Err(StoreError::NotFound(Entity::Room))
    ));
}

pub async fn store_append_admits_only_members_and_replies_within_the_room(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    let refused = async |new: NewStoredMessage| match store.append_message(&new).await {
        Err(StoreError::NotFound(entity)) => entity,
        other => panic!("expected a refusal, got {other:?}"),
    };
    // In the contract's order: the room, then the sender, then the reply.
    let nowhere = self::room(999, None);
    assert_eq!(refused(message(1, &nowhere, 2, None)).await, Entity::Room);
    assert_eq!(refused(message(1, &room, 2, None)).await, Entity::Member);
    assert_eq!(refused(message(1, &room, 3, None)).await, Entity::Member);

    let other = self::room(101, None);
    store
        .create_room(&other, &member(&other, 1, Role::Owner))
        .await
        .unwrap();
    let elsewhere = store
        .append_message(&message(1, &other, 1, None))
        .await
        .unwrap()
        .message;
    for reply_to in [elsewhere.id, MessageId(id(77))] {
        let reply = NewStoredMessage {
            reply_to: Some(reply_to),
            ..message(2, &room, 1, None)
        };
        assert_eq!(refused(reply).await, Entity::Message);
    }
    // Nothing of the refused appends was written.
    assert!(store.message(MessageId(id(2))).await.unwrap().is_none());
    assert_eq!(store.room(room.id).await.unwrap().unwrap().last_seq, 0);

    // A member who left retries a transaction id: refused, not handed the original.
    let two = UserId(id(2));
    store
        .add_member(&member(&room, 2, Role::Member))
        .await
        .unwrap();
    let first = store
        .append_message(&message(3, &room, 2, Some("t")))
        .await
        .unwrap()
        .message;
    let reply = NewStoredMessage {
        reply_to: Some(first.id),
        ..message(4, &room, 1, None)
    };
    assert_eq!(store.append_message(&reply).await.unwrap().message.seq, 2);
    store.remove_member(room.id, two).await.unwrap();
    assert_eq!(
        refused(message(5, &room, 2, Some("t"))).await,
        Entity::Member
    );

    // A deleted user stays a member of its direct conversation but posts in it no more.
    let direct = Room {
        kind: RoomKind::Direct,
        alias: None,
        owner: None,
        ..self::room(200, Some(2))
    };
    let pair = [
        member(&direct, 1, Role::Member),
        member(&direct, 2, Role::Member),
    ];
    store
        .find_or_create_direct(&direct, [&pair[0], &pair[1]])
        .await
        .unwrap();
    store.delete_user(two).await.unwrap();
    assert!(store.member(direct.id, two).await.unwrap().is_some());
    assert_eq!(refused(message(6, &direct, 2, None)).await, Entity::Member);
    let answered = store.append_message(&message(7, &direct, 1, None)).await;
    assert_eq!(answered.unwrap().message.seq, 1);
}

pub async fn store_appends_arriving_together_are_each_judged_alone(h: Harness) {
    // A store may write appends that arrive together in one step; each still gets the answer
    // it would get alone: numbers gapless per room, a refusal its own reason, a repeated
    // transaction id (of an earlier message, or of one in the same wave) its original.
    let (store, _guard, _) = seeded(&h).await;
    store.insert_user(&user(3, "three"), None).await.unwrap();
    let rooms = [room(301, None), room(302, None), room(303, None)];
    for room in &rooms {
        store
            .create_room(room, &member(room, 1, Role::Owner))
            .await
            .unwrap();
        store
            .add_member(&member(room, 2, Role::Member))
            .await
            .unwrap();
    }
    let earlier = store
        .append_message(&message(1, &rooms[0], 1, Some("earlier")))
        .await
        .unwrap()
        .message;
    let elsewhere = store
        .append_message(&message(2, &rooms[1], 1, None))
        .await
        .unwrap()
        .message;

    #[derive(Debug, PartialEq)]
    enum Expect {
        Created,
        Refused(Entity),
        Original,
    }
    // The first wave all new or refused, the second with repeats among new ones.
    let mut waves = [Vec::new(), Vec::new()];
    for i in 0..90u128 {
        let room = &rooms[(i % 3) as usize];
        let n = 1000 + i;
        waves[0].push(match i % 9 {
            0..=3 => (message(n, room, 1 + i % 2, None), Expect::Created),
            4 => (message(n, room, 2, Some(&format!("t{i}"))), Expect::Created),
            5 => (message(n, room, 3, None), Expect::Refused(Entity::Member)),
            6 => (
                message(n, &self::room(999, None), 1, None),
                Expect::Refused(Entity::Room),
            ),
            _ => (
                NewStoredMessage {
                    reply_to: Some(if i % 2 == 0 { elsewhere.id } else { earlier.id }),
                    ..message(n, &rooms[2], 2, None)
                },
                Expect::Refused(Entity::Message),
            ),
        });
        waves[1].push(match i % 3 {
            0 => (
                message(n + 1000, &rooms[0], 1, Some("earlier")),
                Expect::Original,
            ),
            _ => (message(n + 1000, room, 2, None), Expect::Created),
        });
    }
    // Two with one transaction id in the same wave: one is created, the other is handed it.
    let twins = [
        message(3000, &rooms[1], 2, Some("twin")),
        message(3001, &rooms[1], 2, Some("twin")),
    ];
    let mut seqs = [vec![1], vec![1], vec![]];
    let mut changes = [vec![1], vec![1], vec![]];
    let mut twin_answers = Vec::new();
    for (w, wave) in waves.iter().enumerate() {
        let extra: &[NewStoredMessage] = if w == 1 { &twins } else { &[] };
        let tasks: Vec<_> = wave
            .iter()
            .map(|(new, _)| new)
            .chain(extra)
            .map(|new| {
                let (store, new) = (std::sync::Arc::clone(&store), new.clone());
                tokio::spawn(async move { store.append_message(&new).await })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        twin_answers.extend(answers.split_off(wave.len()));
        for ((new, expect), answer) in wave.iter().zip(answers) {
            match (expect, answer) {
                (Expect::Created, Ok(sent)) => {
                    assert!(sent.created, "{new:?} is new");
                    assert_eq!(sent.message.id, new.id);
                    let i = rooms.iter().position(|r| r.id == new.room_id).unwrap();
                    seqs[i].push(sent.message.seq);
                    changes[i].push(sent.message.change_id);
                }
                (Expect::Refused(entity), Err(StoreError::NotFound(refused))) => {
                    assert_eq!(&refused, entity, "{new:?}");
                }
                (Expect::Original, Ok(sent)) => {
                    assert!(!sent.created);
                    assert_eq!(sent.message, earlier);
                }
                (expect, answer) => panic!("{new:?}: expected {expect:?}, got {answer:?}"),
            }
        }
    }
    let [first, second] = [&twin_answers[0], &twin_answers[1]].map(|a| a.as_ref().unwrap());
    assert_eq!(first.message, second.message, "both twins name one message");
    assert!(first.created != second.created, "exactly one twin is new");
    let twin = &first.message;
    seqs[1].push(twin.seq);
    changes[1].push(twin.change_id);

    for (i, room) in rooms.iter().enumerate() {
        seqs[i].sort_unstable();
        changes[i].sort_unstable();
        let count = seqs[i].len() as u64;
        let expected: Vec<u64> = (1..=count).collect();
        assert_eq!(seqs[i], expected, "room {i}: numbers 1..={count}, no gap");
        assert_eq!(changes[i], expected, "room {i}: change cursors too");
        let stored = store.room(room.id).await.unwrap().unwrap();
        assert_eq!((stored.last_seq, stored.last_change), (count, count));
        let range = SeqRange {
            before: None,
            after: Some(0),
            limit: 1000,
        };
        let history = store.messages(room.id, range).await.unwrap();
        let stored_seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
        assert_eq!(
            stored_seqs, expected,
            "room {i}: history holds exactly them"
        );
        for sender in [1, 2] {
            let newest = history
                .iter()
                .filter(|m| m.sender == UserId(id(sender)))
                .map(|m| m.seq)
                .max()
                .unwrap_or(0);
            let marker = store.member(room.id, UserId(id(sender))).await.unwrap();
            assert_eq!(
                marker.unwrap().last_read_seq,
                newest,
                "room {i}: user {sender} has read up to their own newest message"
            );
        }
    }
}

pub async fn store_reactions_are_one_per_member_key_and_message(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    let (one, two) = (UserId(id(1)), UserId(id(2)));
    store
        .add_member(&member(&room, 2, Role::Member))
        .await
        .unwrap();
    let first = store.append_message(&message(1, &room, 1, None)).await;
    let first = first.unwrap().message;
    let second = store.append_message(&message(2, &room, 2, None)).await;
    let second = second.unwrap().message;
    let seen_by = async |viewer: UserId| {
        let reactions = store.reactions(room.id, 1..=2, viewer).await.unwrap();
        reactions
            .into_iter()
            .map(|(seq, r)| (seq, r.key, r.count, r.me))
            .collect::<Vec<_>>()
    };

    // An add that changes something takes the room's next change cursor; a repeat writes nothing.
    let added = store.add_reaction(first.id, one, "👍", 20).await.unwrap();
    let added = added.expect("a new reaction");
    assert_eq!((added.id, added.change_id), (first.id, 3));
    assert_eq!(added.body, first.body);
    assert_eq!(
        store.add_reaction(first.id, one, "👍", 20).await.unwrap(),
        None
    );
    assert_eq!(store.room(room.id).await.unwrap().unwrap().last_change, 3);
    let changes = store.changes(room.id, 2, 10).await.unwrap();
    assert_eq!(changes, [added], "the change feed carries the reaction");

    store.add_reaction(first.id, two, "👍", 20).await.unwrap();
    store.add_reaction(first.id, two, "+1", 20).await.unwrap();
    store.add_reaction(second.id, two, "🎉", 20).await.unwrap();
    assert_eq!(
        seen_by(one).await,
        [
            (1, "+1".to_owned(), 1, false),
            (1, "👍".to_owned(), 2, true),
            (2, "🎉".to_owned(), 1, false),
        ],
        "by sequence number, then key bytewise"
    );
    assert_eq!(seen_by(two).await.iter().filter(|r| r.3).count(), 3);
    let only_second = store.reactions(room.id, 2..=2, one).await.unwrap();
    assert_eq!(only_second.len(), 1, "only the range asked for");
    let backwards = store.reactions(room.id, RangeInclusive::new(3, 1), one);
    let backwards = backwards.await.unwrap();
    assert!(backwards.is_empty(), "an empty range (3..=1 is not 1..=3)");
    let nowhere = self::room(999, None).id;
    assert!(
        store
            .reactions(nowhere, 1..=9, one)
            .await
            .unwrap()
            .is_empty()
    );

    // Removing: the last one of a key takes the key away.
    let removed = store.remove_reaction(first.id, two, "+1").await.unwrap();
    assert!(removed.unwrap().change_id > 3);
    assert_eq!(
        store.remove_reaction(first.id, two, "+1").await.unwrap(),
        None
    );
    assert_eq!(
        store.remove_reaction(first.id, one, "🎉").await.unwrap(),
        None
    );
    assert_eq!(seen_by(one).await.len(), 2);

    // Refusals, in the contract's order; nothing is written.
    let last_change = store.room(room.id).await.unwrap().unwrap().last_change;
    let refused = async |answer: StoreResult<Option<Message>>| match answer {
        Err(StoreError::NotFound(entity)) => entity,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let unknown = MessageId(id(77));
    assert_eq!(
        refused(store.add_reaction(unknown, one, "x", 20).await).await,
        Entity::Message
    );
    let three = UserId(id(3));
    assert_eq!(
        refused(store.add_reaction(first.id, three, "x", 20).await).await,
        Entity::Member
    );
    assert_eq!(
        refused(store.remove_reaction(first.id, three, "👍").await).await,
        Entity::Member
    );
    // At the limit of different keys, a new key is refused and an existing one is not.
    assert!(matches!(
        store.add_reaction(first.id, one, "new", 1).await,
        Err(StoreError::Conflict(Conflict::TooManyReactions))
    ));
    assert_eq!(
        store.room(room.id).await.unwrap().unwrap().last_change,
        last_change
    );
    let same_key = store.add_reaction(second.id, one, "🎉", 1).await.unwrap();
    assert!(same_key.is_some());

    // A tombstone has none, and takes none.
    let deleted = store.delete_message(second.id, epoch()).await.unwrap();
    assert!(
        store
            .reactions(room.id, 2..=2, one)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        refused(store.add_reaction(deleted.id, one, "x", 20).await).await,
        Entity::Message
    );
    assert_eq!(
        refused(store.remove_reaction(deleted.id, one, "🎉").await).await,
        Entity::Message
    );
    assert_eq!(
        seen_by(two).await.len(),
        1,
        "the first message keeps its own"
    );

    // Deleting the room takes them with it, and so does its last member leaving.
    store.delete_room(room.id).await.unwrap();
    assert!(
        store
            .reactions(room.id, 1..=2, one)
            .await
            .unwrap()
            .is_empty()
    );
    let alone = self::room(400, None);
    store
        .create_room(&alone, &member(&alone, 1, Role::Owner))
        .await
        .unwrap();
    let last = store.append_message(&message(3, &alone, 1, None)).await;
    let last = last.unwrap().message;
    store.add_reaction(last.id, one, "👋", 20).await.unwrap();
    let left = store.remove_member(alone.id, one).await.unwrap();
    assert_eq!(left, Departure::RoomDeleted);
    assert!(
        store
            .reactions(alone.id, 1..=1, one)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn store_concurrent_reactions_count_exactly(h: Harness) {
    const USERS: u128 = 100;
    let (store, _guard, _) = seeded(&h).await;
    let room = room(300, None);
    store
        .create_room(&room, &member(&room, 1, Role::Owner))
        .await
        .unwrap();
    for n in 10..10 + USERS {
        store
            .insert_user(&user(n, &format!("u{n}")), None)
            .await
            .unwrap();
        store
            .add_member(&member(&room, n, Role::Member))
            .await
            .unwrap();
    }
    let target = store.append_message(&message(1, &room, 1, None)).await;
    let target = target.unwrap().message;
    let tasks: Vec<_> = (10..10 + USERS)
        .map(|n| UserId(id(n)))
        .chain(std::iter::repeat_n(UserId(id(1)), 20))
        .map(|user| {
            let store = std::sync::Arc::clone(&store);
            tokio::spawn(async move { store.add_reaction(target.id, user, "👍", 20).await })
        })
        .collect();
    let mut changed = 0;
    for task in tasks {
        changed += u64::from(task.await.unwrap().unwrap().is_some());
    }
    assert_eq!(
        changed, 101,
        "100 users once each, and one user's 20 adds as one"
    );
    let reactions = store
        .reactions(room.id, 1..=1, UserId(id(1)))
        .await
        .unwrap();
    assert_eq!(reactions.len(), 1);
    assert_eq!((reactions[0].1.count, reactions[0].1.me), (101, true));
    let stored = store.room(room.id).await.unwrap().unwrap();
    assert_eq!(
        stored.last_change,
        1 + changed,
        "one change cursor per change"
    );
    let changes = store.changes(room.id, 0, 10).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].change_id, stored.last_change);
}

pub async fn store_add_member_checks_capacity_and_duplicates(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    store
        .append_message(&message(1, &room, 1, None))
        .await
        .unwrap();
    let added = store
        .add_member(&member(&room, 2, Role::Member))
        .await
        .unwrap();
    assert_eq!(
        added.last_read_seq, 1,
        "a newcomer starts at the newest message"
    );
    assert!(matches!(
        store.add_member(&member(&room, 2, Role::Member)).await,
        Err(StoreError::Conflict(Conflict::AlreadyMember))
    ));
    assert!(matches!(
        store.add_member(&member(&room, 3, Role::Member)).await,
        Err(StoreError::Conflict(Conflict::RoomFull))
    ));
    assert_eq!(store.room(room.id).await.unwrap().unwrap().member_count, 2);
    store.remove_member(room.id, UserId(id(2))).await.unwrap();
    assert_eq!(store.room(room.id).await.unwrap().unwrap().member_count, 1);
    store
        .add_member(&member(&room, 3, Role::Member))
        .await
        .unwrap();
    let missing = self::room(999, None);
    assert!(matches!(
        store.add_member(&member(&missing, 2, Role::Member)).await,
        Err(StoreError::NotFound(Entity::Room))
    ));
}

pub async fn store_read_marker_is_monotonic(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    store
        .add_member(&member(&room, 2, Role::Member))
        .await
        .unwrap();
    for n in 1..=5 {
        store
            .append_message(&message(n, &room, 1, None))
            .await
            .unwrap();
    }
    let two = UserId(id(2));
    assert_eq!(store.advance_read_marker(room.id, two, 3).await.unwrap(), 3);
    assert_eq!(store.advance_read_marker(room.id, two, 1).await.unwrap(), 3);
    assert_eq!(store.advance_read_marker(room.id, two, 5).await.unwrap(), 5);
    assert_eq!(
        store
            .member(room.id, two)
            .await
            .unwrap()
            .unwrap()
            .last_read_seq,
        5
    );
    assert!(matches!(
        store.advance_read_marker(room.id, UserId(id(3)), 1).await,
        Err(StoreError::NotFound(Entity::Member))
    ));
}

pub async fn store_unique_keys_map_to_conflicts(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    let mut same_name = user(3, "one");
    same_name.email = None;
    assert!(matches!(
        store.insert_user(&same_name, None).await,
        Err(StoreError::Conflict(Conflict::UsernameTaken))
    ));
    let mut same_email = user(3, "three");
    same_email.email = Some("one@example.com".into());
    assert!(matches!(
        store.insert_user(&same_email, None).await,
        Err(StoreError::Conflict(Conflict::EmailTaken))
    ));
    let mut renamed = user(2, "one");
    renamed.email = None;
    assert!(matches!(
        store.update_user(&renamed).await,
        Err(StoreError::Conflict(Conflict::UsernameTaken))
    ));
    let mut same_alias = self::room(101, None);
    same_alias.alias = room.alias.clone();
    assert!(matches!(
        store
            .create_room(&same_alias, &member(&same_alias, 1, Role::Owner))
            .await,
        Err(StoreError::Conflict(Conflict::AliasTaken))
    ));
    let other = self::room(102, None);
    store
        .create_room(&other, &member(&other, 1, Role::Owner))
        .await
        .unwrap();
    let mut steal = other.clone();
    steal.alias = room.alias.clone();
    assert!(matches!(
        store.update_room(&steal).await,
        Err(StoreError::Conflict(Conflict::AliasTaken))
    ));
    // Failed writes left nothing behind.
    assert!(store.user(UserId(id(3))).await.unwrap().is_none());
    assert!(store.room(same_alias.id).await.unwrap().is_none());
    assert_eq!(
        store.user(UserId(id(2))).await.unwrap().unwrap().username,
        "two"
    );
}

pub async fn store_missing_records_map_to_not_found(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    let nobody = UserId(id(77));
    let nowhere = RoomId(id(77));
    let nothing = MessageId(id(77));
    assert!(matches!(
        store.update_user(&user(77, "x")).await,
        Err(StoreError::NotFound(Entity::User))
    ));
    assert!(matches!(
        store.delete_user(nobody).await,
        Err(StoreError::NotFound(Entity::User))
    ));
    assert!(matches!(
        store.set_password_hash(nobody, None).await,
        Err(StoreError::NotFound(Entity::User))
    ));
    assert!(matches!(
        store.update_room(&self::room(77, None)).await,
        Err(StoreError::NotFound(Entity::Room))
    ));
    assert!(matches!(
        store.delete_room(nowhere).await,
        Err(StoreError::NotFound(Entity::Room))
    ));
    assert!(matches!(
        store.remove_member(room.id, nobody).await,
        Err(StoreError::NotFound(Entity::Member))
    ));
    assert!(matches!(
        store.set_role(room.id, nobody, Role::Admin).await,
        Err(StoreError::NotFound(Entity::Member))
    ));
    assert!(matches!(
        store.transfer_ownership(room.id, nobody).await,
        Err(StoreError::NotFound(Entity::Member))
    ));
    assert!(matches!(
        store.edit_message(nothing, "x", epoch()).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    assert!(matches!(
        store.delete_message(nothing, epoch()).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    assert!(store.user(nobody).await.unwrap().is_none());
    assert!(store.room(nowhere).await.unwrap().is_none());
    assert!(store.message(nothing).await.unwrap().is_none());
    assert!(store.member(nowhere, nobody).await.unwrap().is_none());
    assert!(
        store
            .members(nowhere, &MemberQuery::ALL)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .rooms_of_user(nobody, &RoomQuery::ALL)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.password_hash(nobody).await.unwrap().is_none());
    assert!(store.password_hash(UserId(id(1))).await.unwrap().is_none());
    assert_eq!(
        store.password_hash(UserId(id(2))).await.unwrap().as_deref(),
        Some("$hash")
    );
}

pub async fn store_delete_room_removes_members_and_messages(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    store
        .add_member(&member(&room, 2, Role::Member))
        .await
        .unwrap();
    store
        .append_message(&message(1, &room, 2, Some("t")))
        .await
        .unwrap();
    store.delete_room(room.id).await.unwrap();
    assert!(store.room(room.id).await.unwrap().is_none());
    assert!(store.room_by_alias("room-100").await.unwrap().is_none());
    assert!(store.message(MessageId(id(1))).await.unwrap().is_none());
    assert!(
        store
            .members(room.id, &MemberQuery::ALL)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .rooms_of_user(UserId(id(2)), &RoomQuery::ALL)
            .await
            .unwrap()
            .is_empty()
    );
    // The alias and the transaction id are free again.
    let again = self::room(101, None);
    let mut again = again;
    again.alias = Some("room-100".into());
    store
        .create_room(&again, &member(&again, 1, Role::Owner))
        .await
        .unwrap();
    store
        .add_member(&member(&again, 2, Role::Member))
        .await
        .unwrap();
    let sent = store
        .append_message(&message(2, &again, 2, Some("t")))
        .await
        .unwrap();
    assert!(sent.created);
    // A deleted direct conversation frees its pair: the next one is a new room.
    let pair = |n| Room {
        kind: RoomKind::Direct,
        alias: None,
        owner: None,
        ..self::room(n, Some(2))
    };
    let (first, second) = (pair(200), pair(201));
    let members = |room: &Room| [member(room, 1, Role::Member), member(room, 2, Role::Member)];
    let [a, b] = members(&first);
    store.find_or_create_direct(&first, [&a, &b]).await.unwrap();
    store.delete_room(first.id).await.unwrap();
    assert!(
        store
            .direct_room(UserId(id(1)), UserId(id(2)))
            .await
            .unwrap()
            .is_none()
    );
    let [a, b] = members(&second);
    let (created, new) = store
        .find_or_create_direct(&second, [&a, &b])
        .await
        .unwrap();
    assert_eq!((created.id, new), (second.id, true));
}

pub async fn store_remove_member_hands_on_ownership_and_deletes_the_empty_room(h: Harness) {
    let (store, _guard) = h.store().await;
    for n in 1..=4 {
        store
            .insert_user(&user(n, &format!("user{n}")), None)
            .await
            .unwrap();
    }
    let room = room(100, None);
    store
        .create_room(&room, &member(&room, 1, Role::Owner))
        .await
        .unwrap();
    // Member 2 joined first; member 3 joined later but is an admin; 4 joined at the same
    // moment as 3, as a plain member.
    let later = |n, role| Member {
        joined_at: epoch() + TimeDelta::seconds(1),
        ..member(&room, n, role)
    };
    for new in [
        member(&room, 2, Role::Member),
        later(3, Role::Admin),
        later(4, Role::Member),
    ] {
        store.add_member(&new).await.unwrap();
    }
    store
        .append_message(&message(1, &room, 2, Some("t")))
        .await
        .unwrap();
    assert_eq!(
        store.remove_member(room.id, UserId(id(4))).await.unwrap(),
        Departure::Left { new_owner: None }
    );
    // The admin comes before the longest-standing member.
    let Departure::Left {
        new_owner: Some(next),
    } = store.remove_member(room.id, UserId(id(1))).await.unwrap()
    else {
        panic!("the owner's leaving hands the room on");
    };
    assert_eq!((next.user_id, next.role), (UserId(id(3)), Role::Owner));
    let stored = store.room(room.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.owner, stored.member_count),
        (Some(UserId(id(3))), 2)
    );
    assert_eq!(
        store.member(room.id, UserId(id(3))).await.unwrap(),
        Some(next)
    );
    // Then the longest-standing member, and the last one out deletes the room.
    store.remove_member(room.id, UserId(id(3))).await.unwrap();
    assert_eq!(
        store.room(room.id).await.unwrap().unwrap().owner,
        Some(UserId(id(2)))
    );
    assert_eq!(
        store.remove_member(room.id, UserId(id(2))).await.unwrap(),
        Departure::RoomDeleted
    );
    assert!(store.room(room.id).await.unwrap().is_none());
    assert!(store.room_by_alias("room-100").await.unwrap().is_none());
    assert!(store.message(MessageId(id(1))).await.unwrap().is_none());
    assert!(
        store
            .rooms_of_user(UserId(id(2)), &RoomQuery::ALL)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.remove_member(room.id, UserId(id(2))).await,
        Err(StoreError::NotFound(Entity::Member))
    ));
}

pub async fn store_tombstones_are_neither_edited_nor_deleted_again(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    let first = MessageId(id(1));
    store
        .append_message(&message(1, &room, 1, None))
        .await
        .unwrap();
    let at = epoch() + TimeDelta::seconds(5);
    let tombstone = store.delete_message(first, at).await.unwrap();
    assert_eq!(
        (tombstone.body.as_str(), tombstone.deleted_at),
        ("", Some(at))
    );
    assert_eq!((tombstone.seq, tombstone.change_id), (1, 2));
    assert!(matches!(
        store.edit_message(first, "back", at).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    assert!(matches!(
        store.delete_message(first, at).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    let nothing = MessageId(id(99));
    assert!(matches!(
        store.edit_message(nothing, "x", at).await,
        Err(StoreError::NotFound(Entity::Message))
    ));
    // Nothing moved: the tombstone is as it was, and no change cursor was spent.
    assert_eq!(store.message(first).await.unwrap(), Some(tombstone));
    assert_eq!(store.room(room.id).await.unwrap().unwrap().last_change, 2);
}

pub async fn store_room_counters_are_the_stores_own(h: Harness) {
    let (store, _guard) = h.store().await;
    store.insert_user(&user(1, "one"), None).await.unwrap();
    let claimed = Room {
        member_count: 7,
        last_seq: 9,
        last_change: 9,
        ..room(100, None)
    };
    store
        .create_room(&claimed, &member(&claimed, 1, Role::Owner))
        .await
        .unwrap();
    let stored = store.room(claimed.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.member_count, stored.last_seq, stored.last_change),
        (1, 0, 0)
    );
    let edited = Room {
        name: "renamed".into(),
        owner: Some(UserId(id(5))),
        member_count: 40,
        last_seq: 40,
        last_change: 40,
        ..stored.clone()
    };
    store.update_room(&edited).await.unwrap();
    let stored = store.room(claimed.id).await.unwrap().unwrap();
    assert_eq!(stored.name, "renamed");
    assert_eq!(
        (
            stored.owner,
            stored.member_count,
            stored.last_seq,
            stored.last_change
        ),
        (Some(UserId(id(1))), 1, 0, 0)
    );
}

pub async fn store_reads_of_unknown_rooms_are_empty(h: Harness) {
    let (store, _guard) = h.store().await;
    let nowhere = RoomId(id(404));
    let range = SeqRange {
        before: None,
        after: None,
        limit: 10,
    };
    assert!(store.messages(nowhere, range).await.unwrap().is_empty());
    assert!(store.changes(nowhere, 0, 10).await.unwrap().is_empty());
    assert!(
        store
            .members(nowhere, &MemberQuery::ALL)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.room(nowhere).await.unwrap().is_none());
    assert!(
        store
            .room_with_member(nowhere, UserId(id(1)))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .member(nowhere, UserId(id(1)))
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn store_values_round_trip_exactly(h: Harness) {
    let (store, _guard) = h.store().await;
    let at = epoch() + TimeDelta::microseconds(123_456_789);
    let full = User {
        id: UserId(id(5)),
        username: "full.user-5".into(),
        email: Some("full@example.com".into()),
        display_name: "Fülle ✓".into(),
        profile: Profile {
            first_name: Some("F".into()),
            last_name: Some("U".into()),
            phone: Some("+44 20".into()),
            address: Some("1 Road".into()),
            bio: Some("bio".into()),
        },
        status: Status::Away,
        status_message: Some("brb".into()),
        is_admin: true,
        created_at: at,
        updated_at: at + TimeDelta::seconds(1),
    };
    store.insert_user(&full, Some("$argon2id$x")).await.unwrap();
    assert_eq!(store.user(full.id).await.unwrap(), Some(full.clone()));
    assert_eq!(
        store
            .list_users(&crate::store::UserQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap(),
        std::slice::from_ref(&full)
    );

    let mut private = room(6, Some(50));
    private.visibility = Visibility::Private;
    private.topic = Some("topic ✓".into());
    private.password_hash = Some("$argon2id$room".into());
    private.owner = Some(full.id);
    private.created_at = at;
    private.updated_at = at;
    let owner = Member {
        joined_at: at,
        ..member(&private, 5, Role::Owner)
    };
    store.create_room(&private, &owner).await.unwrap();
    assert_eq!(store.room(private.id).await.unwrap(), Some(private.clone()));
    assert_eq!(
        store.member(private.id, full.id).await.unwrap(),
        Some(owner.clone())
    );
    assert_eq!(
        store.rooms_of_user(full.id, &RoomQuery::ALL).await.unwrap(),
        [(private.clone(), owner)]
    );

    let first = store
        .append_message(&message(1, &private, 5, None))
        .await
        .unwrap();
    let new = NewStoredMessage {
        reply_to: Some(first.message.id),
        metadata: Some(serde_json::json!({"a": [1, "b", null], "c": {"d": 1.5}})),
        created_at: at,
        ..message(7, &private, 5, Some("txn-7"))
    };
    let sent = store.append_message(&new).await.unwrap().message;
    assert_eq!(sent.metadata, new.metadata);
    assert_eq!(sent.reply_to, new.reply_to);
    assert_eq!(store.message(sent.id).await.unwrap(), Some(sent));
}

pub async fn store_rotation_detects_reuse(h: Harness) {
    let (store, _guard) = h.store().await;
    store.insert_user(&user(1, "one"), None).await.unwrap();
    let token = |s: &str, hours: i64| IssuedToken {
        hash: TokenHash::of(s),
        expires_at: epoch() + TimeDelta::hours(hours),
    };
    let session = NewSession {
        session_id: SessionId(id(9)),
        user_id: UserId(id(1)),
        access: token("a1", 1),
        refresh: token("r1", 24),
    };
    store.insert_session(&session).await.unwrap();
    let access = store.token(&TokenHash::of("a1")).await.unwrap().unwrap();
    assert_eq!(
        (access.kind, access.session_id, access.rotated),
        (TokenKind::Access, session.session_id, false)
    );

    assert_eq!(
        store
            .rotate_refresh_token(&TokenExchange {
                presented: TokenHash::of("a1"),
                access: token("x", 1),
                refresh: token("y", 2),
                at: epoch()
            })
            .await
            .unwrap(),
        Rotation::Invalid,
        "an access token is not a refresh token"
    );
    assert_eq!(
        store
            .rotate_refresh_token(&TokenExchange {
                presented: TokenHash::of("r1"),
                access: token("a2", 1),
                refresh: token("r2", 24),
                at: epoch()
            })
            .await
            .unwrap(),
        Rotation::Rotated {
            session_id: session.session_id,
            user_id: UserId(id(1))
        }
    );
    assert!(
        store.token(&TokenHash::of("a1")).await.unwrap().is_none(),
        "old access token gone"
    );
    assert!(
        store
            .token(&TokenHash::of("r1"))
            .await
            .unwrap()
            .unwrap()
            .rotated
    );
    assert_eq!(
        store
            .token(&TokenHash::of("r2"))
            .await
            .unwrap()
            .unwrap()
            .session_id,
        session.session_id
    );

    assert_eq!(
        store
            .rotate_refresh_token(&TokenExchange {
                presented: TokenHash::of("r1"),
                access: token("a3", 1),
                refresh: token("r3", 24),
                at: epoch()
            })
            .await
            .unwrap(),
        Rotation::Reused {
            session_id: session.session_id,
            user_id: session.user_id,
        }
    );
    for gone in ["r1", "a2", "r2", "a3", "r3"] {
        assert!(
            store.token(&TokenHash::of(gone)).await.unwrap().is_none(),
            "{gone}"
        );
    }
    // Expired refresh tokens rotate nothing; purging removes them.
    let late = NewSession {
        session_id: SessionId(id(10)),
        user_id: UserId(id(1)),
        access: token("a4", 1),
        refresh: token("r4", 2),
    };
    store.insert_session(&late).await.unwrap();
    let after = epoch() + TimeDelta::hours(3);
    assert_eq!(
        store
            .rotate_refresh_token(&TokenExchange {
                presented: TokenHash::of("r4"),
                access: token("a5", 4),
                refresh: token("r5", 5),
                at: after
            })
            .await
            .unwrap(),
        Rotation::Invalid
    );
    assert_eq!(store.purge_expired_tokens(after).await.unwrap(), 2);
    assert!(store.token(&TokenHash::of("r4")).await.unwrap().is_none());
    // Revoking all of a user's logins, or deleting the user, removes its tokens.
    let again = NewSession {
        session_id: SessionId(id(11)),
        ..late
    };
    store.insert_session(&again).await.unwrap();
    store.revoke_user_sessions(UserId(id(1))).await.unwrap();
    assert!(store.token(&TokenHash::of("a4")).await.unwrap().is_none());
    store.insert_session(&again).await.unwrap();
    store.delete_user(UserId(id(1))).await.unwrap();
    assert!(store.token(&TokenHash::of("r4")).await.unwrap().is_none());
}

pub async fn store_room_with_member_reads_both_at_once(h: Harness) {
    let (store, _guard, room) = seeded(&h).await;
    let owner = UserId(id(1));
    let stranger = UserId(id(2));
    let (found, member) = store
        .room_with_member(room.id, owner)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, room.id);
    assert_eq!(
        member.map(|m| (m.user_id, m.role)),
        Some((owner, Role::Owner))
    );
    let (found, member) = store
        .room_with_member(room.id, stranger)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found.id, member), (room.id, None));
    assert!(
        store
            .room_with_member(RoomId(id(999)), owner)
            .await
            .unwrap()
            .is_none()
    );
    // The membership read is the same as `member`'s.
    store
        .add_member(&self::member(&room, 2, Role::Member))
        .await
        .unwrap();
    let (_, member) = store
        .room_with_member(room.id, stranger)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(member, store.member(room.id, stranger).await.unwrap());
}

pub async fn store_tickets_are_taken_once_and_die_with_their_login(h: Harness) {
    let (store, _guard) = h.store().await;
    store.insert_user(&user(1, "one"), None).await.unwrap();
    let token = |s: &str, minutes: i64| IssuedToken {
        hash: TokenHash::of(s),
        expires_at: epoch() + TimeDelta::minutes(minutes),
    };
    let (session, user_id) = (SessionId(id(9)), UserId(id(1)));
    let login = NewSession {
        session_id: session,
        user_id,
        access: token("a1", 60),
        refresh: token("r1", 600),
    };
    // No login yet: no ticket.
    assert!(
        !store
            .insert_ticket(&token("t0", 1), session, user_id, epoch())
            .await
            .unwrap()
    );
    assert!(!store.session_active(session, epoch()).await.unwrap());
    store.insert_session(&login).await.unwrap();
    assert!(store.session_active(session, epoch()).await.unwrap());
    assert!(
        !store
            .session_active(session, epoch() + TimeDelta::minutes(601))
            .await
            .unwrap(),
        "a login whose tokens all expired has ended"
    );
    assert!(
        store
            .insert_ticket(&token("t1", 1), session, user_id, epoch())
            .await
            .unwrap()
    );
    // A ticket is not an access token, nor a refresh token.
    assert_eq!(
        store
            .token(&TokenHash::of("t1"))
            .await
            .unwrap()
            .unwrap()
            .kind,
        TokenKind::Ticket
    );
    assert_eq!(
        store
            .rotate_refresh_token(&TokenExchange {
                presented: TokenHash::of("t1"),
                access: token("x", 1),
                refresh: token("y", 2),
                at: epoch()
            })
            .await
            .unwrap(),
        Rotation::Invalid
    );
    // Other tokens are not tickets; a ticket is taken once.
    assert!(
        store
            .take_ticket(&TokenHash::of("a1"), epoch())
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.token(&TokenHash::of("a1")).await.unwrap().is_some());
    let taken = store
        .take_ticket(&TokenHash::of("t1"), epoch())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (taken.kind, taken.session_id, taken.user_id),
        (TokenKind::Ticket, session, user_id)
    );
    assert!(
        store
            .take_ticket(&TokenHash::of("t1"), epoch())
            .await
            .unwrap()
            .is_none()
    );
    // Expired tickets are refused (and spent).
    store
        .insert_ticket(&token("t2", 1), session, user_id, epoch())
        .await
        .unwrap();
    let late = epoch() + TimeDelta::minutes(2);
    assert!(
        store
            .take_ticket(&TokenHash::of("t2"), late)
            .await
            .unwrap()
            .is_none()
    );
    // Revoking the login takes its tickets with it, and no new ones are stored.
    store
        .insert_ticket(&token("t3", 1), session, user_id, epoch())
        .await
        .unwrap();
    store.revoke_session(session).await.unwrap();
    assert!(
        store
            .take_ticket(&TokenHash::of("t3"), epoch())
            .await
            .unwrap()
            .is_none()
    );
    assert!(!store.session_active(session, epoch()).await.unwrap());
    assert!(
        !store
            .insert_ticket(&token("t4", 1), session, user_id, epoch())
            .await
            .unwrap()
    );
}

pub async fn store_concurrent_ticket_takes_succeed_once(h: Harness) {
    let (store, _guard) = h.store().await;
    let (session, user_id) = (SessionId(id(9)), UserId(id(1)));
    let token = |s: &str| IssuedToken {
        hash: TokenHash::of(s),
        expires_at: epoch() + TimeDelta::minutes(10),
    };
    store
        .insert_session(&NewSession {
            session_id: session,
            user_id,
            access: token("a"),
            refresh: token("r"),
        })
        .await
        .unwrap();
    store
        .insert_ticket(&token("t"), session, user_id, epoch())
        .await
        .unwrap();
    let takes = (0..16).map(|_| {
        let store = std::sync::Arc::clone(&store);
        tokio::spawn(async move { store.take_ticket(&TokenHash::of("t"), epoch()).await })
    });
    let mut taken = 0;
    for take in takes {
        if take.await.unwrap().unwrap().is_some() {
            taken += 1;
        }
    }
    assert_eq!(taken, 1);
}

/// An attempt on `key` at `at`, `allowed` per window, opening one that ends at `window_end`.
fn attempt(key: &str, allowed: u32, at: DateTime<Utc>, window_end: DateTime<Utc>) -> Attempt {
    Attempt {
        key: key.to_owned(),
        allowed,
        at,
        window_end,
    }
}

pub async fn store_attempts_are_counted_in_windows(h: Harness) {
    let (store, _guard) = h.store().await;
    let end = epoch() + TimeDelta::minutes(5);
    for _ in 0..3 {
        assert_eq!(
            store
                .count_attempt(attempt("k", 3, epoch(), end))
                .await
                .unwrap(),
            None
        );
    }
    assert_eq!(
        store
            .count_attempt(attempt("k", 3, epoch(), end))
            .await
            .unwrap(),
        Some(end),
        "the fourth attempt is refused until the window ends"
    );
    // Later attempts within the window do not move its end.
    let later = epoch() + TimeDelta::minutes(1);
    assert_eq!(
        store
            .count_attempt(attempt("k", 3, later, later + TimeDelta::minutes(5)))
            .await
            .unwrap(),
        Some(end)
    );
    // Keys are separate.
    assert_eq!(
        store
            .count_attempt(attempt("other", 3, epoch(), end))
            .await
            .unwrap(),
        None
    );
    // A new window opens once the old one ended.
    let next_end = end + TimeDelta::minutes(5);
    assert_eq!(
        store
            .count_attempt(attempt("k", 3, end, next_end))
            .await
            .unwrap(),
        None
    );
    // Clearing forgets the count.
    store.clear_attempts("k").await.unwrap();
    store.clear_attempts("never seen").await.unwrap();
    for _ in 0..3 {
        assert_eq!(
            store
                .count_attempt(attempt("k", 3, end, next_end))
                .await
                .unwrap(),
            None
        );
    }
    // Purging removes the windows that ended.
    let after_end = end + TimeDelta::minutes(1);
    assert_eq!(
        store.purge_attempts(after_end).await.unwrap(),
        1,
        "\"other\""
    );
    assert_eq!(
        store
            .count_attempt(attempt("k", 3, end, next_end))
            .await
            .unwrap(),
        Some(next_end),
        "the open window survives the purge"
    );
}

pub async fn store_concurrent_attempts_cannot_exceed_the_budget(h: Harness) {
    let (store, _guard) = h.store().await;
    let end = epoch() + TimeDelta::minutes(5);
    let attempts = (0..30).map(|_| {
        let store = std::sync::Arc::clone(&store);
        tokio::spawn(async move { store.count_attempt(attempt("k", 5, epoch(), end)).await })
    });
    let mut allowed = 0;
    for attempt in attempts {
        if attempt.await.unwrap().unwrap().is_none() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 5);
}

pub async fn store_connections_count_until_they_expire(h: Harness) {
    use crate::store::Connection;
    use crate::{ConnectionId, NodeId};
    let (store, _guard) = h.store().await;
    let (alice, bob, carol) = (UserId(id(1)), UserId(id(2)), UserId(id(3)));
    let (node_a, node_b) = (NodeId(id(50)), NodeId(id(51)));
    let connection = |n: u128, node: NodeId, user_id: UserId, minutes: i64| Connection {
        id: ConnectionId(id(n)),
        node,
        user_id,
        expires_at: epoch() + TimeDelta::minutes(minutes),
    };
    let online = |users: Vec<UserId>, at_minute: i64| {
        let store = std::sync::Arc::clone(&store);
        async move {
            let mut online = store
                .online_users(&users, epoch() + TimeDelta::minutes(at_minute))
                .await
                .unwrap();
            online.sort();
            online
        }
    };
    store
        .open_connection(&connection(10, node_a, alice, 1))
        .await
        .unwrap();
    store
        .open_connection(&connection(11, node_a, alice, 1))
        .await
        .unwrap();
    store
        .open_connection(&connection(12, node_b, bob, 1))
        .await
        .unwrap();
    assert_eq!(online(vec![alice, bob, carol], 0).await, [alice, bob]);
    assert_eq!(online(vec![carol], 0).await, []);
    // One of two connections closes: still online.
    store.close_connection(ConnectionId(id(10))).await.unwrap();
    store.close_connection(ConnectionId(id(99))).await.unwrap();
    assert_eq!(online(vec![alice], 0).await, [alice]);
    // Node A renews its connections; node B stopped (a crash): bob goes offline by himself.
    store
        .renew_connections(node_a, epoch() + TimeDelta::minutes(3))
        .await
        .unwrap();
    assert_eq!(online(vec![alice, bob], 2).await, [alice]);
    assert_eq!(
        store
            .purge_connections(epoch() + TimeDelta::minutes(2))
            .await
            .unwrap(),
        1
    );
    assert_eq!(online(vec![alice, bob], 2).await, [alice]);
    assert_eq!(online(vec![alice, bob], 4).await, []);
}

/// A room 300 with members 1 (owner), 2, 3 and 4, and user 5 who is no member.
async fn thread_room(
    h: &Harness,
) -> (
    std::sync::Arc<dyn crate::store::Store>,
    crate::testing::Guard,
    Room,
) {
    let (store, guard, _) = seeded(h).await;
    for (n, name) in [(3, "three"), (4, "four"), (5, "five")] {
        store.insert_user(&user(n, name), None).await.unwrap();
    }
    let room = room(300, None);
    store
        .create_room(&room, &member(&room, 1, Role::Owner))
        .await
        .unwrap();
    for n in 2..=4 {
        store
            .add_member(&member(&room, n, Role::Member))
            .await
            .unwrap();
    }
    (store, guard, room)
}

fn reply(n: u128, room: &Room, sender: u128, root: MessageId) -> NewStoredMessage {
    NewStoredMessage {
        thread_root: Some(root),
        ..message(n, room, sender, None)
    }
}

pub async fn store_thread_replies_are_counted_on_their_root(h: Harness) {
    let (store, _guard, room) = thread_room(&h).await;
    let root = store.append_message(&message(1, &room, 1, None)).await;
    let root = root.unwrap().message;
    store
        .append_message(&message(2, &room, 2, None))
        .await
        .unwrap();
    let first = store.append_message(&reply(3, &room, 2, root.id)).await;
    let first = first.unwrap().message;
    assert_eq!((first.seq, first.thread_root), (3, Some(root.id)));
    store
        .append_message(&reply(4, &room, 3, root.id))
        .await
        .unwrap();
    store
        .append_message(&reply(5, &room, 2, root.id))
        .await
        .unwrap();

    let root = store.message(root.id).await.unwrap().unwrap();
    let summary = root
        .thread
        .clone()
        .expect("a root with replies has a summary");
    assert_eq!(summary.reply_count, 3);
    assert_eq!(summary.last_reply_seq, 5);
    assert_eq!(summary.participants, vec![UserId(id(2)), UserId(id(3))]);
    assert_eq!(root.change_id, 1, "a reply does not change its root");
    // Replies keep the room's gapless sequence, and a thread pages like history.
    let all = SeqRange {
        before: None,
        after: None,
        limit: 10,
    };
    let history = store.messages(room.id, all).await.unwrap();
    let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(history[0].thread, root.thread, "history shows the summary");
    let replies = store.replies(room.id, root.id, all).await.unwrap();
    let seqs: Vec<u64> = replies.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [3, 4, 5]);
    let older = SeqRange {
        before: Some(5),
        after: None,
        limit: 1,
    };
    let older = store.replies(room.id, root.id, older).await.unwrap();
    assert_eq!(older.iter().map(|m| m.seq).collect::<Vec<_>>(), [4]);
    let newer = SeqRange {
        before: None,
        after: Some(3),
        limit: 1,
    };
    let newer = store.replies(room.id, root.id, newer).await.unwrap();
    assert_eq!(newer.iter().map(|m| m.seq).collect::<Vec<_>>(), [4]);
    let none = store.replies(room.id, first.id, all).await.unwrap();
    assert!(none.is_empty(), "a reply has no thread of its own");
    let unknown = store.replies(RoomId(id(999)), root.id, all).await.unwrap();
    assert!(unknown.is_empty());

    // What may not start a thread: a reply, a tombstone, another room's message, nothing.
    let other = store
        .append_message(&message(6, &seeded_room(), 1, None))
        .await;
    let other = other.unwrap().message;
    let gone = store.append_message(&message(7, &room, 1, None)).await;
    let gone = gone.unwrap().message;
    store.delete_message(gone.id, epoch()).await.unwrap();
    let before = store.room(room.id).await.unwrap().unwrap();
    for (n, root) in [
        (8, first.id),
        (9, gone.id),
        (10, other.id),
        (11, MessageId(id(77))),
    ] {
        assert_err!(
            store.append_message(&reply(n, &room, 2, root)).await,
            StoreError::NotFound(Entity::Thread)
        );
    }
    let after = store.room(room.id).await.unwrap().unwrap();
    assert_eq!(
        (after.last_seq, after.last_change),
        (before.last_seq, before.last_change),
        "a refused reply changes nothing"
    );
    // Deleting a root leaves its thread (a tombstone with a summary) and its replies.
    store.delete_message(root.id, epoch()).await.unwrap();
    let tombstone = store.message(root.id).await.unwrap().unwrap();
    assert_eq!(tombstone.thread.map(|t| t.reply_count), Some(3));
    assert_eq!(store.replies(room.id, root.id, all).await.unwrap().len(), 3);
}

/// Room 100 of [`seeded`], where only user 1 is a member.
fn seeded_room() -> Room {
    room(100, Some(2))
}

pub async fn store_threads_are_listed_by_activity_with_followers_unread(h: Harness) {
    let (store, _guard, room) = thread_room(&h).await;
    let (one, two, three, four) = (UserId(id(1)), UserId(id(2)), UserId(id(3)), UserId(id(4)));
    let a = store
        .append_message(&message(1, &room, 1, None))
        .await
        .unwrap()
        .message;
    let b = store
        .append_message(&message(2, &room, 2, None))
        .await
        .unwrap()
        .message;
    // 2 replies in a; 3 replies in b, mentioning 4; then 2 replies in a again.
    store
        .append_message(&reply(3, &room, 2, a.id))
        .await
        .unwrap();
    store
        .append_message(&NewStoredMessage {
            mentions: vec![four],
            ..reply(4, &room, 3, b.id)
        })
        .await
        .unwrap();
    store
        .append_message(&reply(5, &room, 2, a.id))
        .await
        .unwrap();

    let threads = store.threads(room.id, one, None, 10).await.unwrap();
    let roots: Vec<MessageId> = threads.iter().map(|t| t.root.id).collect();
    assert_eq!(roots, [a.id, b.id], "the most recently active first");
    let unread: Vec<u64> = threads.iter().map(|t| t.unread).collect();
    assert_eq!(unread, [2, 1]);
    let page = store.threads(room.id, one, Some(5), 10).await.unwrap();
    assert_eq!(page.iter().map(|t| t.root.id).collect::<Vec<_>>(), [b.id]);
    let mine = store.threads(room.id, two, None, 10).await.unwrap();
    assert_eq!(
        mine.iter().map(|t| t.unread).collect::<Vec<_>>(),
        [0, 1],
        "a replier has read the thread up to its own reply"
    );

    // Who follows: the root's sender (1 in a; 2 in b), repliers (2 in a; 3 in b), the
    // mentioned (4 in b). One follows a; two follows a and b; three follows b; four follows b.
    let threads_of = |user| {
        let store = std::sync::Arc::clone(&store);
        async move {
            let counts = store.unread_counts(user, None).await.unwrap();
            counts.iter().map(|c| c.threads).sum::<u64>()
        }
    };
    assert_eq!(threads_of(one).await, 2);
    assert_eq!(threads_of(two).await, 1, "b's reply from three");
    assert_eq!(threads_of(three).await, 0);
    assert_eq!(threads_of(four).await, 1);

    // A marker moves to the newest reply at or below the sequence number given, never back.
    assert_eq!(
        store.mark_thread_read(room.id, a.id, one, 4).await.unwrap(),
        1
    );
    assert_eq!(
        store.mark_thread_read(room.id, a.id, one, 1).await.unwrap(),
        1
    );
    assert_eq!(threads_of(one).await, 1);
    assert_eq!(
        store.mark_thread_read(room.id, a.id, one, 5).await.unwrap(),
        0
    );
    assert_eq!(threads_of(one).await, 0);
    assert!(store.unread_counts(one, None).await.unwrap().is_empty());
    // Reading a thread does not follow it.
    assert_eq!(
        store
            .mark_thread_read(room.id, a.id, four, 3)
            .await
            .unwrap(),
        1
    );
    assert_eq!(threads_of(four).await, 1, "still only b");
    // Errors: a non-member; a root that is a reply or of no thread-starting kind.
    assert_err!(
        store
            .mark_thread_read(room.id, a.id, UserId(id(5)), 5)
            .await,
        StoreError::NotFound(Entity::Member)
    );
    let a_reply = store.replies(
        room.id,
        a.id,
        SeqRange {
            before: None,
            after: None,
            limit: 1,
        },
    );
    let a_reply = a_reply.await.unwrap().remove(0);
    assert_err!(
        store.mark_thread_read(room.id, a_reply.id, one, 5).await,
        StoreError::NotFound(Entity::Thread)
    );
    assert_err!(
        store
            .mark_thread_read(room.id, MessageId(id(77)), one, 5)
            .await,
        StoreError::NotFound(Entity::Thread)
    );
    // Leaving takes the member's thread markers: back, it follows nothing.
    store.remove_member(room.id, four).await.unwrap();
    store
        .add_member(&member(&room, 4, Role::Member))
        .await
        .unwrap();
    assert_eq!(threads_of(four).await, 0);
}

pub async fn store_concurrent_replies_keep_the_thread_count_exact(h: Harness) {
    const REPLIES: u128 = 40;
    let (store, _guard, _) = seeded(&h).await;
    let room = room(300, None);
    store
        .create_room(&room, &member(&room, 1, Role::Owner))
        .await
        .unwrap();
    for n in 10..10 + REPLIES {
        store
            .insert_user(&user(n, &format!("u{n}")), None)
            .await
            .unwrap();
        store
            .add_member(&member(&room, n, Role::Member))
            .await
            .unwrap();
    }
    let root = store
        .append_message(&message(1, &room, 1, None))
        .await
        .unwrap()
        .message;
    let tasks: Vec<_> = (10..10 + REPLIES)
        .map(|n| {
            let store = std::sync::Arc::clone(&store);
            // Each mentions the root's sender, and someone who is no member.
            let new = NewStoredMessage {
                mentions: vec![UserId(id(1)), UserId(id(5555))],
                ..reply(1000 + n, &room, n, root.id)
            };
            tokio::spawn(async move { store.append_message(&new).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().unwrap().created);
    }
    let summary = store
        .message(root.id)
        .await
        .unwrap()
        .unwrap()
        .thread
        .unwrap();
    assert_eq!(summary.reply_count, REPLIES as u64);
    assert_eq!(summary.last_reply_seq, 1 + REPLIES as u64);
    assert_eq!(
        summary.participants.len(),
        crate::ThreadSummary::MAX_PARTICIPANTS
    );
    let all = SeqRange {
        before: None,
        after: None,
        limit: 100,
    };
    let replies = store.replies(room.id, root.id, all).await.unwrap();
    let seqs: Vec<u64> = replies.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (2..=1 + REPLIES as u64).collect::<Vec<_>>());
    assert!(replies.iter().all(|m| m.mentions == [UserId(id(1))]));
    // The root's sender follows, and has read none of them; each mentions it.
    let counts = store.unread_counts(UserId(id(1)), None).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].threads, counts[0].mentions),
        (REPLIES as u64, REPLIES as u64)
    );
}

pub async fn store_mentions_count_for_members_until_read(h: Harness) {
    let (store, _guard, room) = thread_room(&h).await;
    let (one, two, three, five) = (UserId(id(1)), UserId(id(2)), UserId(id(3)), UserId(id(5)));
    let named = NewStoredMessage {
        mentions: vec![two, five, three],
        ..message(1, &room, 4, None)
    };
    let named = store.append_message(&named).await.unwrap().message;
    assert_eq!(
        named.mentions,
        [two, three],
        "a user who is no member is dropped"
    );
    assert_eq!(
        store.message(named.id).await.unwrap().unwrap().mentions,
        [two, three]
    );
    let everyone = NewStoredMessage {
        mentions_room: true,
        ..message(2, &room, 1, None)
    };
    let everyone = store.append_message(&everyone).await.unwrap().message;
    assert!(everyone.mentions_room);
    store
        .append_message(&message(3, &room, 2, None))
        .await
        .unwrap();

    let mentions_of = |user| {
        let store = std::sync::Arc::clone(&store);
        async move {
            let counts = store.unread_counts(user, Some(room.id)).await.unwrap();
            counts.first().map_or(0, |c| c.mentions)
        }
    };
    assert_eq!(
        mentions_of(one).await,
        0,
        "the room's mention is not its sender's"
    );
    assert_eq!(mentions_of(three).await, 2);
    // Two's own message moved its marker past both.
    assert_eq!(mentions_of(two).await, 0);
    assert_eq!(mentions_of(UserId(id(4))).await, 1);
    // The marker passing a mention clears it.
    store.advance_read_marker(room.id, three, 1).await.unwrap();
    assert_eq!(mentions_of(three).await, 1);
    // Listed newest first, the whole room's included, others' only.
    let listed = store.mentions(three, None, 10).await.unwrap();
    assert_eq!(
        listed.iter().map(|m| m.id).collect::<Vec<_>>(),
        [everyone.id, named.id]
    );
    let older = store.mentions(three, Some(everyone.id), 10).await.unwrap();
    assert_eq!(older.iter().map(|m| m.id).collect::<Vec<_>>(), [named.id]);
    assert_eq!(store.mentions(three, None, 1).await.unwrap().len(), 1);
    assert!(store.mentions(one, None, 10).await.unwrap().is_empty());
    // Deleting a message takes its mentions back.
    store.delete_message(everyone.id, epoch()).await.unwrap();
    assert_eq!(mentions_of(three).await, 0);
    let listed = store.mentions(three, None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|m| m.id).collect::<Vec<_>>(), [named.id]);
    // Leaving takes them too.
    store.remove_member(room.id, three).await.unwrap();
    assert!(store.mentions(three, None, 10).await.unwrap().is_empty());
    assert!(store.unread_counts(three, None).await.unwrap().is_empty());
}
