//! The model test: random sequences of operations applied through [`Chat`](crate::Chat) to the store under
//! test and to [`MemoryStore`](crate::store::MemoryStore) must give the same results, step by
//! step, and leave the same state.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::{Harness, TestChat, memory_store};
use crate::{
    HistoryQuery, MessageId, NewMessage, NewRoom, NewUser, Role, RoomId, RoomUpdate, UserId,
    Visibility,
};

/// One operation; small numbers pick among the users, rooms and messages made so far.
#[derive(Debug, Clone)]
enum Op {
    CreateUser(u8),
    CreateRoom {
        owner: u8,
        private: bool,
        capacity: Option<u8>,
    },
    Join {
        user: u8,
        room: u8,
    },
    Leave {
        user: u8,
        room: u8,
    },
    AddMember {
        actor: u8,
        room: u8,
        user: u8,
        admin: bool,
    },
    RemoveMember {
        actor: u8,
        room: u8,
        user: u8,
    },
    Send {
        user: u8,
        room: u8,
        text: u8,
        txn: Option<u8>,
    },
    SendDirect {
        from: u8,
        to: u8,
        text: u8,
    },
    Edit {
        user: u8,
        message: u8,
        text: u8,
    },
    Delete {
        user: u8,
        message: u8,
    },
    React {
        user: u8,
        message: u8,
        key: u8,
        add: bool,
    },
    MarkRead {
        user: u8,
        room: u8,
        seq: u8,
    },
    /// A reply in the thread of a message, mentioning a user (or the whole room).
    Reply {
        user: u8,
        root: u8,
        mention: u8,
        everyone: bool,
    },
    MarkThreadRead {
        user: u8,
        root: u8,
        seq: u8,
    },
    /// A room's threads and a user's mentions.
    Threads {
        user: u8,
        room: u8,
    },
    History {
        user: u8,
        room: u8,
        before: Option<u8>,
        after: Option<u8>,
        limit: u8,
    },
    Changes {
        user: u8,
        room: u8,
        cursor: u8,
    },
    Unread {
        user: u8,
    },
    SetCapacity {
        actor: u8,
        room: u8,
        capacity: Option<u8>,
    },
    DeleteRoom {
        actor: u8,
        room: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let n = || 0..6u8;
    prop_oneof![
        2 => n().prop_map(Op::CreateUser),
        1 => (n(), any::<bool>(), proptest::option::of(1..4u8))
            .prop_map(|(owner, private, capacity)| Op::CreateRoom { owner, private, capacity }),
        2 => (n(), n()).prop_map(|(user, room)| Op::Join { user, room }),
        1 => (n(), n()).prop_map(|(user, room)| Op::Leave { user, room }),
        1 => (n(), n(), n(), any::<bool>())
            .prop_map(|(actor, room, user, admin)| Op::AddMember { actor, room, user, admin }),
        1 => (n(), n(), n()).prop_map(|(actor, room, user)| Op::RemoveMember { actor, room, user }),
        5 => (n(), n(), n(), proptest::option::of(0..3u8))
            .prop_map(|(user, room, text, txn)| Op::Send { user, room, text, txn }),
        2 => (n(), n(), n()).prop_map(|(from, to, text)| Op::SendDirect { from, to, text }),
        1 => (n(), any::<u8>(), n()).prop_map(|(user, message, text)| Op::Edit { user, message, text }),
        1 => (n(), any::<u8>()).prop_map(|(user, message)| Op::Delete { user, message }),
        2 => (n(), any::<u8>(), 0..3u8, any::<bool>())
            .prop_map(|(user, message, key, add)| Op::React { user, message, key, add }),
        2 => (n(), n(), 0..8u8).prop_map(|(user, room, seq)| Op::MarkRead { user, room, seq }),
        2 => (n(), any::<u8>(), n(), proptest::bool::weighted(0.2))
            .prop_map(|(user, root, mention, everyone)| Op::Reply { user, root, mention, everyone }),
        1 => (n(), any::<u8>(), 0..8u8)
            .prop_map(|(user, root, seq)| Op::MarkThreadRead { user, root, seq }),
        1 => (n(), n()).prop_map(|(user, room)| Op::Threads { user, room }),
        2 => (n(), n(), proptest::option::of(0..8u8), proptest::option::of(0..8u8), 0..5u8)
            .prop_map(|(user, room, before, after, limit)| Op::History { user, room, before, after, limit }),
        1 => (n(), n(), 0..8u8).prop_map(|(user, room, cursor)| Op::Changes { user, room, cursor }),
        1 => n().prop_map(|user| Op::Unread { user }),
        1 => (n(), n(), proptest::option::of(1..4u8))
            .prop_map(|(actor, room, capacity)| Op::SetCapacity { actor, room, capacity }),
        1 => (n(), n()).prop_map(|(actor, room)| Op::DeleteRoom { actor, room }),
    ]
}

/// What has been made so far (read from the reference side), to pick operands from.
#[derive(Default)]
struct Made {
    users: Vec<UserId>,
    rooms: Vec<RoomId>,
    messages: Vec<(RoomId, MessageId)>,
}

fn pick<T: Copy>(items: &[T], n: u8, missing: T) -> T {
    if items.is_empty() {
        missing
    } else {
        items[n as usize % items.len()]
    }
}

impl Made {
    fn user(&self, n: u8) -> UserId {
        pick(&self.users, n, UserId(uuid::Uuid::from_u128(u128::MAX)))
    }

    fn room(&self, n: u8) -> RoomId {
        pick(&self.rooms, n, RoomId(uuid::Uuid::from_u128(u128::MAX)))
    }

    fn message(&self, n: u8) -> (RoomId, MessageId) {
        let missing = (self.room(0), MessageId(uuid::Uuid::from_u128(u128::MAX)));
        pick(&self.messages, n, missing)
    }
}

/// Applies one operation; the outcome as comparable text.
async fn apply(chat: &TestChat, made: &Made, op: &Op) -> String {
    fn show<T: std::fmt::Debug>(result: crate::Result<T>) -> String {
        match result {
            Ok(value) => format!("ok {value:?}"),
            Err(error) => format!("err {}: {error}", error.code()),
        }
    }
    let text = |n: u8| NewMessage::text(format!("text {n}"));
    match *op {
        Op::CreateUser(n) => show(chat.create_user(NewUser::named(format!("user{n}"))).await),
        Op::CreateRoom {
            owner,
            private,
            capacity,
        } => {
            let new = NewRoom {
                visibility: if private {
                    Visibility::Private
                } else {
                    Visibility::Public
                },
                capacity: capacity.map(u32::from),
                ..NewRoom::named("room")
            };
            show(chat.create_room(made.user(owner), new).await)
        }
        Op::Join { user, room } => {
            show(chat.join_room(made.user(user), made.room(room), None).await)
        }
        Op::Leave { user, room } => show(chat.leave_room(made.user(user), made.room(room)).await),
        Op::AddMember {
            actor,
            room,
            user,
            admin,
        } => {
            let role = if admin { Role::Admin } else { Role::Member };
            show(
                chat.add_member(made.user(actor), made.room(room), made.user(user), role)
                    .await,
            )
        }
        Op::RemoveMember { actor, room, user } => show(
            chat.remove_member(made.user(actor), made.room(room), made.user(user))
                .await,
        ),
        Op::Send {
            user,
            room,
            text: t,
            txn,
        } => {
            let mut new = text(t);
            new.txn_id = txn.map(|txn| format!("txn-{txn}"));
            show(chat.send(made.user(user), made.room(room), new).await)
        }
        Op::SendDirect { from, to, text: t } => show(
            chat.send_direct(made.user(from), made.user(to), text(t))
                .await,
        ),
        Op::Edit {
            user,
            message,
            text: t,
        } => {
            let (room, id) = made.message(message);
            show(
                chat.edit_message(made.user(user), room, id, &format!("edited {t}"))
                    .await,
            )
        }
        Op::Delete { user, message } => {
            let (room, id) = made.message(message);
            show(chat.delete_message(made.user(user), room, id).await)
        }
        Op::React {
            user,
            message,
            key,
            add,
        } => {
            let (room, id) = made.message(message);
            let key = ["👍", "🎉", "+1"][usize::from(key) % 3];
            let user = made.user(user);
            show(if add {
                chat.add_reaction(user, room, id, key).await
            } else {
                chat.remove_reaction(user, room, id, key).await
            })
        }
        Op::Reply {
            user,
            root,
            mention,
            everyone,
        } => {
            let (room, root) = made.message(root);
            let mut new = text(mention).in_thread(root).mentioning(made.user(mention));
            new.mentions_room = everyone;
            show(chat.send(made.user(user), room, new).await)
        }
        Op::MarkThreadRead { user, root, seq } => {
            let (room, root) = made.message(root);
            let user = made.user(user);
            show(
                chat.mark_thread_read(user, room, root, u64::from(seq))
                    .await,
            )
        }
        Op::Threads { user, room } => {
            let user = made.user(user);
            let threads = chat.threads(user, made.room(room), None, Some(3)).await;
            let mentions = chat.mentions(user, None, Some(3)).await;
            format!("{} {}", show(threads), show(mentions))
        }
        Op::MarkRead { user, room, seq } => show(
            chat.mark_read(made.user(user), made.room(room), u64::from(seq))
                .await,
        ),
        Op::History {
            user,
            room,
            before,
            after,
            limit,
        } => {
            let page = HistoryQuery {
                before: before.map(u64::from),
                after: after.map(u64::from),
                limit: Some(u32::from(limit)),
            };
            show(chat.history(made.user(user), made.room(room), page).await)
        }
        Op::Changes { user, room, cursor } => show(
            chat.changes(made.user(user), made.room(room), u64::from(cursor), Some(3))
                .await,
        ),
        Op::Unread { user } => {
            let user = made.user(user);
            let summary = chat.unread_summary(user).await;
            let messages = chat.unread_messages(user, None, None).await;
            let direct = chat.direct_conversations(user, None, None).await;
            format!("{} {} {}", show(summary), show(messages), show(direct))
        }
        Op::SetCapacity {
            actor,
            room,
            capacity,
        } => {
            let update = RoomUpdate {
                capacity: Some(capacity.map(u32::from)),
                ..RoomUpdate::default()
            };
            show(
                chat.update_room(made.user(actor), made.room(room), update)
                    .await,
            )
        }
        Op::DeleteRoom { actor, room } => {
            show(chat.delete_room(made.user(actor), made.room(room)).await)
        }
    }
}

/// Records what an operation made, from the reference side's outcome.
async fn record(reference: &TestChat, made: &mut Made, op: &Op) {
    match op {
        Op::CreateUser(n) => {
            if let Ok(Some(user)) = reference.store.user_by_username(&format!("user{n}")).await
                && !made.users.contains(&user.id)
            {
                made.users.push(user.id);
            }
        }
        _ => {
            // Rooms and messages: everything the users can reach, in a stable order.
            for user in made.users.clone() {
                for (room, _) in reference
                    .store
                    .rooms_of_user(user, &crate::store::RoomQuery::ALL)
                    .await
                    .unwrap_or_default()
                {
                    if !made.rooms.contains(&room.id) {
                        made.rooms.push(room.id);
                    }
                }
            }
            for room in made.rooms.clone() {
                let all = crate::store::SeqRange {
                    before: None,
                    after: None,
                    limit: 1000,
                };
                for message in reference
                    .store
                    .messages(room, all)
                    .await
                    .unwrap_or_default()
                {
                    if !made.messages.contains(&(room, message.id)) {
                        made.messages.push((room, message.id));
                    }
                }
            }
        }
    }
}

/// The whole observable state, as text.
async fn state(chat: &TestChat, made: &Made) -> String {
    let mut out = String::new();
    for user in &made.users {
        let rooms = chat
            .store
            .rooms_of_user(*user, &crate::store::RoomQuery::ALL)
            .await
            .map_err(|e| e.to_string());
        out += &format!(
            "user {user}: {:?} {rooms:?}\n",
            chat.store.user(*user).await.ok()
        );
    }
    for room in &made.rooms {
        let all = crate::store::SeqRange {
            before: None,
            after: None,
            limit: 1000,
        };
        out += &format!(
            "room {room}: {:?}\n members {:?}\n messages {:?}\n changes {:?}\n",
            chat.store.room(*room).await.ok(),
            chat.store
                .members(*room, &crate::store::MemberQuery::ALL)
                .await
                .ok(),
            chat.store.messages(*room, all).await.ok(),
            chat.store.changes(*room, 0, 1000).await.ok(),
        );
    }
    out
}

async fn compare(harness: &Harness, ops: &[Op]) -> Result<(), TestCaseError> {
    let tested = harness.chat().await;
    let reference = Harness::new(memory_store).chat().await;
    let mut made = Made::default();
    for (step, op) in ops.iter().enumerate() {
        let expected = apply(&reference, &made, op).await;
        let actual = apply(&tested, &made, op).await;
        prop_assert_eq!(&actual, &expected, "step {} {:?}", step, op);
        record(&reference, &mut made, op).await;
        // Time moves between steps, so orderings by time are exercised too.
        reference.clock.advance(chrono::TimeDelta::milliseconds(1));
        tested.clock.advance(chrono::TimeDelta::milliseconds(1));
    }
    prop_assert_eq!(state(&tested, &made).await, state(&reference, &made).await);
    Ok(())
}

/// Runs the model test: 32 random sequences of up to 60 operations, shrunk on failure.
pub fn check(harness: Harness) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("test runtime");
    let config = Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&proptest::collection::vec(op(), 1..60), |ops| {
        runtime.block_on(compare(&harness, &ops))
    });
    if let Err(failure) = result {
        panic!("the store differs from MemoryStore: {failure}");
    }
}
