//! A chat with every kind of data a store holds, and everything its users see of it: what
//! the counter check and the moves between stores are tested on.

use crate::{
    Chat, HistoryQuery, Member, Message, NewMessage, NewRoom, NewUser, Role, Room, Thread,
    UnreadSummary, User, UserId, Visibility,
};

/// Fills `chat` (on an empty store) with users with and without passwords, a deleted one,
/// a public and a private room with a join password, a direct conversation, replies, threads
/// followed and read, mentions by name and of the whole room, edits, tombstones, reactions,
/// read markers, a member who left and one who came back. Returns the users who remain.
pub async fn every_kind_of_data(chat: &Chat) -> Vec<User> {
    let alice = chat.register(NewUser::named("alice"), "alice's password 1");
    let alice = alice.await.expect("register");
    let bob = chat.create_user(NewUser::named("bob")).await.expect("user");
    let carol = NewUser {
        display_name: Some("Carol Café".into()),
        ..NewUser::named("carol")
    };
    let carol = chat.create_user(carol).await.expect("user");
    let dave = chat
        .create_user(NewUser::named("dave"))
        .await
        .expect("user");
    let ok = "the fixture's steps are allowed";

    let room = chat.create_room(alice.id, NewRoom::named("everything"));
    let room = room.await.expect(ok);
    for user in [&bob, &carol] {
        chat.add_member(alice.id, room.id, user.id, Role::Member)
            .await
            .expect(ok);
    }
    let send = |from: UserId, new: NewMessage| async move {
        chat.send(from, room.id, new).await.expect(ok).message
    };
    let root = send(
        alice.id,
        NewMessage::text("root of the thread").with_txn_id("t-1"),
    )
    .await;
    send(bob.id, NewMessage::text("hey carol").mentioning(carol.id)).await;
    let everyone = NewMessage {
        mentions_room: true,
        ..NewMessage::text("all of you, café at noon")
    };
    send(alice.id, everyone).await;
    let reply = send(bob.id, NewMessage::text("in thread").in_thread(root.id)).await;
    let answer = NewMessage::text("me too")
        .in_thread(root.id)
        .mentioning(bob.id);
    send(carol.id, answer).await;
    let edited = send(carol.id, NewMessage::text("typo").replying_to(root.id)).await;
    chat.edit_message(carol.id, room.id, edited.id, "fixed it")
        .await
        .expect(ok);
    let metadata = NewMessage {
        metadata: Some(serde_json::json!({"kind": "poll", "options": [1, 2]})),
        ..NewMessage::text("東京タワー 🗼")
    };
    send(bob.id, metadata).await;
    let mention = send(alice.id, NewMessage::text("bob!").mentioning(bob.id)).await;
    chat.delete_message(alice.id, room.id, mention.id)
        .await
        .expect(ok);
    chat.delete_message(bob.id, room.id, reply.id)
        .await
        .expect(ok);
    for (user, key) in [(&carol, "👍"), (&bob, "👍"), (&carol, "+1")] {
        chat.add_reaction(user.id, room.id, root.id, key)
            .await
            .expect(ok);
    }
    // Dave follows the thread, leaves (his marker goes with him) and comes back.
    chat.join_room(dave.id, room.id, None).await.expect(ok);
    send(dave.id, NewMessage::text("count me in").in_thread(root.id)).await;
    chat.leave_room(dave.id, room.id).await.expect(ok);
    chat.join_room(dave.id, room.id, None).await.expect(ok);
    chat.mark_read(bob.id, room.id, 3).await.expect(ok);
    chat.mark_thread_read(alice.id, room.id, root.id, 4)
        .await
        .expect(ok);

    let private = NewRoom {
        visibility: Visibility::Private,
        password: Some("open sesame".into()),
        topic: Some("secrets".into()),
        ..NewRoom::named("private")
    };
    let private = chat.create_room(carol.id, private).await.expect(ok);
    chat.add_member(carol.id, private.id, dave.id, Role::Admin)
        .await
        .expect(ok);
    chat.add_member(carol.id, private.id, bob.id, Role::Member)
        .await
        .expect(ok);
    let whisper = NewMessage::text("whisper").mentioning(bob.id);
    chat.send(dave.id, private.id, whisper).await.expect(ok);
    chat.leave_room(bob.id, private.id).await.expect(ok);

    let direct = chat.send_direct(bob.id, carol.id, NewMessage::text("psst"));
    let direct = direct.await.expect(ok).message;
    let answer = NewMessage::text("what?").replying_to(direct.id);
    chat.send(carol.id, direct.room_id, answer).await.expect(ok);

    let gone = chat.create_user(NewUser::named("erin")).await.expect(ok);
    let farewell = chat.send_direct(gone.id, alice.id, NewMessage::text("farewell"));
    farewell.await.expect(ok);
    chat.delete_user(gone.id, gone.id).await.expect(ok);
    vec![alice, bob, carol, dave]
}

/// Everything one user sees of a chat through the API: its rooms with their history,
/// members and threads, its unread counts and mentions, the directory and a search.
#[derive(Debug, PartialEq)]
pub struct View {
    /// The user's rooms, as listed, with its membership.
    pub rooms: Vec<(Room, Member)>,
    /// Each room's whole history.
    pub history: Vec<Vec<Message>>,
    /// Each room's members.
    pub members: Vec<Vec<Member>>,
    /// Each room's threads, with the user's unread replies.
    pub threads: Vec<Vec<Thread>>,
    /// Unread messages, mentions and replies.
    pub unread: UnreadSummary,
    /// Messages that mention the user.
    pub mentions: Vec<Message>,
    /// The user directory.
    pub directory: Vec<String>,
    /// Messages found by "cafe" (an accent-insensitive prefix).
    pub found: Vec<Message>,
}

impl View {
    /// The fields that differ from `other`'s: each name, with both values.
    pub fn differences(&self, other: &View) -> Vec<(&'static str, String)> {
        fn differ<T: PartialEq + std::fmt::Debug>(
            name: &'static str,
            a: &T,
            b: &T,
        ) -> Option<(&'static str, String)> {
            (a != b).then(|| (name, format!("{a:#?}\nwhere there was\n{b:#?}")))
        }
        [
            differ("rooms", &self.rooms, &other.rooms),
            differ("history", &self.history, &other.history),
            differ("members", &self.members, &other.members),
            differ("threads", &self.threads, &other.threads),
            differ("unread counts", &self.unread, &other.unread),
            differ("mentions", &self.mentions, &other.mentions),
            differ("directory", &self.directory, &other.directory),
            differ("search results", &self.found, &other.found),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

/// What `user` sees of `chat` (at most 100 of each list).
pub async fn view(chat: &Chat, user: UserId) -> View {
    let ok = "the user may read this";
    let rooms = chat.rooms_of(user, user, None, None, Some(100)).await;
    let rooms: Vec<(Room, Member)> = (rooms.expect(ok).items.into_iter())
        .map(|membership| (membership.room, membership.member))
        .collect();
    let mut view = View {
        rooms: Vec::new(),
        history: Vec::new(),
        members: Vec::new(),
        threads: Vec::new(),
        unread: chat.unread_summary(user).await.expect(ok),
        mentions: chat.mentions(user, None, Some(100)).await.expect(ok).items,
        directory: (chat.directory(user, None, None, Some(100)).await.expect(ok))
            .items
            .into_iter()
            .map(|entry| format!("{entry:?}"))
            .collect(),
        found: chat
            .search(user, "cafe", None, None, Some(100))
            .await
            .expect(ok)
            .items,
    };
    for (room, member) in rooms {
        let history = chat.history(user, room.id, HistoryQuery::newest(100));
        view.history.push(history.await.expect(ok).items);
        let members = chat.members(user, room.id, None, Some(100)).await;
        view.members.push(members.expect(ok).items);
        let threads = chat.threads(user, room.id, None, Some(100)).await;
        view.threads.push(threads.expect(ok).items);
        view.rooms.push((room, member));
    }
    view
}
