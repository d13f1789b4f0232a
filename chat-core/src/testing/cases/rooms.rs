//! Group rooms: creation, visibility, joining, capacity, roles and ownership.

use crate::Field;
use crate::testing::Harness;
use crate::{
    Conflict, Denied, Entity, Error, NewMessage, NewRoom, Role, RoomKind, RoomUpdate, Visibility,
};

pub async fn rooms_are_created_with_owner_membership(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let new = NewRoom {
        name: "  Rust  ".into(),
        topic: Some("all things rust".into()),
        alias: Some("Rust-Lang".into()),
        capacity: Some(10),
        members: vec![bob.id, bob.id, alice.id],
        ..NewRoom::default()
    };
    let room = chat.create_room(alice.id, new).await.unwrap();
    assert_eq!(room.kind, RoomKind::Group);
    assert_eq!(room.name, "Rust");
    assert_eq!(room.alias.as_deref(), Some("rust-lang"));
    assert_eq!(room.owner, Some(alice.id));
    assert_eq!(room.member_count, 2);
    assert_eq!(room.last_seq, 0);
    assert_eq!(room.visibility, Visibility::Public);
    assert!(!room.has_password());

    let members = chat
        .members(alice.id, room.id, None, None)
        .await
        .unwrap()
        .items;
    let roles: Vec<_> = members.iter().map(|m| (m.user_id, m.role)).collect();
    assert_eq!(roles, [(alice.id, Role::Owner), (bob.id, Role::Member)]);
    assert_eq!(chat.room(bob.id, room.id).await.unwrap(), room);
}

pub async fn room_input_is_validated(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let cases = [
        (NewRoom::named("   "), "name"),
        (NewRoom::named("n".repeat(101)), "name"),
        (
            NewRoom {
                alias: Some("no spaces".into()),
                ..NewRoom::named("x")
            },
            "alias",
        ),
        (
            NewRoom {
                capacity: Some(0),
                ..NewRoom::named("x")
            },
            "capacity",
        ),
        (
            NewRoom {
                capacity: Some(u32::MAX),
                ..NewRoom::named("x")
            },
            "capacity",
        ),
        (
            NewRoom {
                password: Some(String::new()),
                ..NewRoom::named("x")
            },
            "password",
        ),
        (
            NewRoom {
                topic: Some("t".repeat(501)),
                ..NewRoom::named("x")
            },
            "topic",
        ),
    ];
    for (new, expected) in cases {
        match chat.create_room(alice.id, new).await {
            Err(Error::Invalid { field, .. }) => assert_eq!(field.name(), expected),
            other => panic!("expected invalid {expected}, got {other:?}"),
        }
    }
    let ghost = crate::UserId(uuid::Uuid::from_u128(u128::MAX));
    let with_ghost = NewRoom {
        members: vec![ghost],
        ..NewRoom::named("x")
    };
    assert_err!(
        chat.create_room(alice.id, with_ghost).await,
        Error::NotFound(Entity::User)
    );
    let bob = chat.new_user("bob").await;
    let too_many = NewRoom {
        capacity: Some(1),
        members: vec![bob.id],
        ..NewRoom::named("x")
    };
    assert_err!(
        chat.create_room(alice.id, too_many).await,
        Error::Conflict(Conflict::RoomFull)
    );
    assert!(
        chat.rooms_of(alice.id, alice.id, None, None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn room_aliases_are_unique_and_join_links_work(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let aliased = |name: &str, alias: &str| NewRoom {
        alias: Some(alias.into()),
        ..NewRoom::named(name)
    };
    let room = chat
        .create_room(alice.id, aliased("a", "lobby"))
        .await
        .unwrap();
    assert_err!(
        chat.create_room(bob.id, aliased("b", "LOBBY")).await,
        Error::Conflict(Conflict::AliasTaken)
    );
    let other = chat
        .create_room(bob.id, aliased("b", "hall"))
        .await
        .unwrap();
    let steal = RoomUpdate {
        alias: Some(Some("lobby".into())),
        ..RoomUpdate::default()
    };
    assert_err!(
        chat.update_room(bob.id, other.id, steal).await,
        Error::Conflict(Conflict::AliasTaken)
    );

    assert_eq!(
        chat.room_by_alias(bob.id, "Lobby").await.unwrap().id,
        room.id
    );
    let member = chat.join_by_alias(bob.id, "lobby", None).await.unwrap();
    assert_eq!(member.room_id, room.id);
    assert_err!(
        chat.room_by_alias(bob.id, "nowhere").await,
        Error::NotFound(Entity::Room)
    );

    // Renaming the alias frees the old one.
    let rename = RoomUpdate {
        alias: Some(Some("foyer".into())),
        ..RoomUpdate::default()
    };
    chat.update_room(alice.id, room.id, rename).await.unwrap();
    chat.create_room(bob.id, aliased("c", "lobby"))
        .await
        .unwrap();
}

pub async fn searches_fold_case_beyond_ascii(h: Harness) {
    let chat = h.chat().await;
    let edith = chat
        .create_user(crate::NewUser {
            display_name: Some("Édith Ω".into()),
            ..crate::NewUser::named("edith")
        })
        .await
        .unwrap();
    let room = NewRoom {
        topic: Some("Über STRASSE".into()),
        ..NewRoom::named("Élan Ωmega")
    };
    let room = chat.create_room(edith.id, room).await.unwrap();
    for text in ["élan", "ÉLAN ΩMEGA", "ωmega", "über", "strasse"] {
        let found = chat
            .public_rooms(edith.id, Some(text), None, None)
            .await
            .unwrap()
            .items;
        assert_eq!(
            found.iter().map(|r| r.id).collect::<Vec<_>>(),
            [room.id],
            "{text:?} finds the room"
        );
    }
    for text in ["édith", "ÉDITH ω", "Ω"] {
        let found = chat
            .directory(edith.id, Some(text), None, None)
            .await
            .unwrap()
            .items;
        assert_eq!(
            found.iter().map(|u| u.id).collect::<Vec<_>>(),
            [edith.id],
            "{text:?} finds the user"
        );
    }
    // Folding is case only: accents are kept, and a renamed room is found by its new name.
    let found = chat.public_rooms(edith.id, Some("elan"), None, None).await;
    assert!(found.unwrap().items.is_empty());
    let rename = RoomUpdate {
        name: Some("Ærø".into()),
        ..RoomUpdate::default()
    };
    chat.update_room(edith.id, room.id, rename).await.unwrap();
    let found = chat.public_rooms(edith.id, Some("ÆRØ"), None, None).await;
    assert_eq!(found.unwrap().items.len(), 1);
    let found = chat.public_rooms(edith.id, Some("élan"), None, None).await;
    assert!(found.unwrap().items.is_empty());
}

pub async fn public_rooms_are_listed_private_are_not(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let rust = chat.new_room(&alice, "Rust talk").await;
    let go = chat.new_room(&alice, "Go talk").await;
    let private = NewRoom {
        visibility: Visibility::Private,
        ..NewRoom::named("secret rust")
    };
    let secret = chat.create_room(alice.id, private).await.unwrap();
    chat.direct_room(alice.id, bob.id).await.unwrap();

    let listed = chat
        .public_rooms(bob.id, None, None, None)
        .await
        .unwrap()
        .items;
    let ids: Vec<_> = listed.iter().map(|r| r.id).collect();
    assert_eq!(ids, [rust.id, go.id]);
    let found = chat
        .public_rooms(bob.id, Some("RUST"), None, None)
        .await
        .unwrap()
        .items;
    assert_eq!(found.iter().map(|r| r.id).collect::<Vec<_>>(), [rust.id]);
    let next = chat
        .public_rooms(bob.id, None, Some(rust.id), Some(5))
        .await
        .unwrap()
        .items;
    assert_eq!(next.iter().map(|r| r.id).collect::<Vec<_>>(), [go.id]);

    assert_err!(chat.room(bob.id, secret.id).await, Error::Forbidden(_));
    assert_err!(
        chat.members(bob.id, secret.id, None, None).await,
        Error::Forbidden(_)
    );
    assert_eq!(
        chat.members(bob.id, rust.id, None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let unknown = crate::RoomId(uuid::Uuid::from_u128(u128::MAX));
    assert_err!(
        chat.room(bob.id, unknown).await,
        Error::NotFound(Entity::Room)
    );
}

pub async fn private_rooms_are_joined_only_by_being_added(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let private = NewRoom {
        visibility: Visibility::Private,
        ..NewRoom::named("secret")
    };
    let room = chat.create_room(alice.id, private).await.unwrap();
    assert_err!(
        chat.join_room(bob.id, room.id, None).await,
        Error::Forbidden(Denied::PrivateRoom)
    );
    assert_err!(
        chat.send(bob.id, room.id, NewMessage::text("let me in"))
            .await,
        Error::Forbidden(Denied::NotMember)
    );
    chat.add_member(alice.id, room.id, bob.id, Role::Member)
        .await
        .unwrap();
    chat.send(bob.id, room.id, NewMessage::text("thanks"))
        .await
        .unwrap();
}

pub async fn room_password_is_checked(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let locked = NewRoom {
        password: Some("open sesame".into()),
        ..NewRoom::named("vault")
    };
    let room = chat.create_room(alice.id, locked).await.unwrap();
    assert!(room.has_password());
    assert!(!room.is_open());
    assert_err!(
        chat.join_room(bob.id, room.id, None).await,
        Error::Forbidden(Denied::PasswordRequired)
    );
    assert_err!(
        chat.join_room(bob.id, room.id, Some("open barley")).await,
        Error::Forbidden(Denied::WrongRoomPassword)
    );
    assert_err!(
        chat.send(bob.id, room.id, NewMessage::text("no implicit join"))
            .await,
        Error::Forbidden(_)
    );
    chat.join_room(bob.id, room.id, Some("open sesame"))
        .await
        .unwrap();

    // Removing the password opens the room.
    let open = RoomUpdate {
        password: Some(None),
        ..RoomUpdate::default()
    };
    assert!(
        !chat
            .update_room(alice.id, room.id, open)
            .await
            .unwrap()
            .has_password()
    );
    let carol = chat.new_user("carol").await;
    chat.join_room(carol.id, room.id, None).await.unwrap();
}

pub async fn capacity_is_enforced(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let small = NewRoom {
        capacity: Some(2),
        ..NewRoom::named("pair")
    };
    let room = chat.create_room(alice.id, small).await.unwrap();
    chat.join_room(bob.id, room.id, None).await.unwrap();
    assert_err!(
        chat.join_room(carol.id, room.id, None).await,
        Error::Conflict(Conflict::RoomFull)
    );
    assert_err!(
        chat.add_member(alice.id, room.id, carol.id, Role::Member)
            .await,
        Error::Conflict(Conflict::RoomFull)
    );
    assert_err!(
        chat.send(carol.id, room.id, NewMessage::text("implicit join"))
            .await,
        Error::Conflict(Conflict::RoomFull)
    );
    assert_err!(
        chat.join_room(bob.id, room.id, None).await,
        Error::Conflict(Conflict::AlreadyMember)
    );
    let shrink = RoomUpdate {
        capacity: Some(Some(1)),
        ..RoomUpdate::default()
    };
    assert_err!(
        chat.update_room(alice.id, room.id, shrink).await,
        Error::Invalid {
            field: Field::Capacity,
            ..
        }
    );
    // A seat freed is a seat taken.
    chat.leave_room(bob.id, room.id).await.unwrap();
    chat.join_room(carol.id, room.id, None).await.unwrap();
    assert_eq!(chat.room(alice.id, room.id).await.unwrap().member_count, 2);
}

pub async fn only_managers_edit_and_only_the_owner_deletes(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    chat.add_member(alice.id, room.id, carol.id, Role::Admin)
        .await
        .unwrap();
    let topic = |t: &str| RoomUpdate {
        topic: Some(Some(t.into())),
        ..RoomUpdate::default()
    };
    assert_err!(
        chat.update_room(bob.id, room.id, topic("mine")).await,
        Error::Forbidden(_)
    );
    let edited = chat
        .update_room(carol.id, room.id, topic("admins edit"))
        .await
        .unwrap();
    assert_eq!(edited.topic.as_deref(), Some("admins edit"));
    let private = RoomUpdate {
        name: Some("renamed".into()),
        visibility: Some(Visibility::Private),
        ..RoomUpdate::default()
    };
    let edited = chat.update_room(alice.id, room.id, private).await.unwrap();
    assert_eq!(
        (edited.name.as_str(), edited.visibility),
        ("renamed", Visibility::Private)
    );
    assert_eq!(chat.room(bob.id, room.id).await.unwrap(), edited);

    assert_err!(
        chat.delete_room(carol.id, room.id).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.delete_room(bob.id, room.id).await,
        Error::Forbidden(Denied::NotOwner)
    );
    chat.send(bob.id, room.id, NewMessage::text("soon gone"))
        .await
        .unwrap();
    chat.delete_room(alice.id, room.id).await.unwrap();
    assert_err!(
        chat.room(alice.id, room.id).await,
        Error::NotFound(Entity::Room)
    );
    assert!(
        chat.rooms_of(bob.id, bob.id, None, None, None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

pub async fn adding_others_to_rooms_is_limited_per_user(h: Harness) {
    let chat = h.chat().await;
    let peer = chat.peer();
    let allowed = chat.config().member_adds_allowed as usize;
    let mallory = chat.new_user("mallory").await;
    let room = chat.new_room(&mallory, "spam").await;
    let mut victims = Vec::new();
    for n in 0..=allowed {
        victims.push(chat.new_user(&format!("victim{n}")).await);
    }
    // Half the budget here, half on another engine: one budget.
    for (n, victim) in victims[..allowed].iter().enumerate() {
        let engine = if n % 2 == 0 { &chat.chat } else { &peer };
        engine
            .add_member(mallory.id, room.id, victim.id, Role::Member)
            .await
            .unwrap();
    }
    let last = victims[allowed].id;
    assert_err!(
        peer.add_member(mallory.id, room.id, last, Role::Member)
            .await,
        Error::RateLimited { .. }
    );
    let listed = NewRoom {
        members: vec![last],
        ..NewRoom::named("spam two")
    };
    assert_err!(
        chat.create_room(mallory.id, listed.clone()).await,
        Error::RateLimited { .. }
    );
    assert_eq!(
        chat.rooms_of(mallory.id, mallory.id, None, None, None)
            .await
            .unwrap()
            .items
            .len(),
        1,
        "a refused room is not created"
    );
    assert_eq!(
        chat.rooms_of(last, last, None, None, None)
            .await
            .unwrap()
            .items
            .len(),
        0
    );
    // Joining oneself and others' adds are not held up; the window passes.
    let owner = chat.new_user("owner").await;
    let other = chat.new_room(&owner, "fine").await;
    chat.join_room(mallory.id, other.id, None).await.unwrap();
    chat.add_member(owner.id, other.id, last, Role::Member)
        .await
        .unwrap();
    let window = chrono::TimeDelta::from_std(chat.config().member_add_window).unwrap();
    chat.clock.advance(window);
    chat.create_room(mallory.id, listed).await.unwrap();
}

pub async fn members_are_paged_in_joining_order(h: Harness) {
    let chat = h.chat().await;
    let owner = chat.new_user("owner").await;
    let room = chat.new_room(&owner, "crowd").await;
    let mut joined = vec![owner.id];
    for n in 0..5 {
        // Two join in the same instant: the user id breaks the tie.
        if n != 3 {
            chat.clock.advance(chrono::TimeDelta::seconds(1));
        }
        let user = chat.new_user(&format!("member{n}")).await;
        chat.join_room(user.id, room.id, None).await.unwrap();
        joined.push(user.id);
    }
    joined[3..5].sort();
    let mut listed = Vec::new();
    let mut after = None;
    loop {
        let page = chat
            .members(owner.id, room.id, after, Some(2))
            .await
            .unwrap()
            .items;
        assert!(page.len() <= 2);
        let Some(last) = page.last() else { break };
        after = Some(crate::MemberCursor::of(last));
        let cursor: crate::MemberCursor = after.unwrap().to_string().parse().unwrap();
        assert_eq!(Some(cursor), after, "a cursor survives its text form");
        listed.extend(page.iter().map(|m| m.user_id));
    }
    assert_eq!(listed, joined);
    assert_err!(
        "12.nope".parse::<crate::MemberCursor>(),
        Error::Invalid {
            field: Field::Cursor,
            ..
        }
    );
}

pub async fn managers_add_and_remove_members(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let dave = chat.new_user("dave").await;
    let room = chat.new_room(&alice, "general").await;
    chat.add_member(alice.id, room.id, bob.id, Role::Admin)
        .await
        .unwrap();
    let added = chat
        .add_member(bob.id, room.id, carol.id, Role::Member)
        .await
        .unwrap();
    assert_eq!(added.role, Role::Member);
    assert_err!(
        chat.add_member(bob.id, room.id, dave.id, Role::Admin).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.add_member(carol.id, room.id, dave.id, Role::Member)
            .await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.add_member(alice.id, room.id, dave.id, Role::Owner)
            .await,
        Error::Invalid {
            field: Field::Role,
            ..
        }
    );
    assert_err!(
        chat.add_member(alice.id, room.id, carol.id, Role::Member)
            .await,
        Error::Conflict(Conflict::AlreadyMember)
    );
    let ghost = crate::UserId(uuid::Uuid::from_u128(u128::MAX));
    assert_err!(
        chat.add_member(alice.id, room.id, ghost, Role::Member)
            .await,
        Error::NotFound(Entity::User)
    );
    assert_err!(
        chat.remove_member(carol.id, room.id, bob.id).await,
        Error::Forbidden(_)
    );
    chat.remove_member(bob.id, room.id, carol.id).await.unwrap();
    assert_err!(
        chat.member(alice.id, room.id, carol.id).await,
        Error::NotFound(Entity::Member)
    );
    assert_err!(
        chat.remove_member(bob.id, room.id, carol.id).await,
        Error::NotFound(Entity::Member)
    );
    // A removed member reads nothing more.
    assert_err!(
        chat.history(carol.id, room.id, Default::default()).await,
        Error::Forbidden(_)
    );
    assert_eq!(chat.room(alice.id, room.id).await.unwrap().member_count, 2);
}

pub async fn admins_cannot_remove_the_owner_or_other_admins(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let room = chat.new_room(&alice, "general").await;
    chat.add_member(alice.id, room.id, bob.id, Role::Admin)
        .await
        .unwrap();
    chat.add_member(alice.id, room.id, carol.id, Role::Admin)
        .await
        .unwrap();
    assert_err!(
        chat.remove_member(bob.id, room.id, alice.id).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.remove_member(bob.id, room.id, carol.id).await,
        Error::Forbidden(_)
    );
    chat.remove_member(alice.id, room.id, carol.id)
        .await
        .unwrap();
    // Removing oneself is leaving.
    chat.remove_member(bob.id, room.id, bob.id).await.unwrap();
    assert_eq!(
        chat.members(alice.id, room.id, None, None)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
}

pub async fn owner_leaving_hands_on_ownership(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    chat.clock.advance(chrono::TimeDelta::seconds(1));
    chat.add_member(alice.id, room.id, carol.id, Role::Admin)
        .await
        .unwrap();
    // An admin is preferred to an older plain member.
    chat.leave_room(alice.id, room.id).await.unwrap();
    let room_now = chat.room(bob.id, room.id).await.unwrap();
    assert_eq!(room_now.owner, Some(carol.id));
    assert_eq!(
        chat.member(bob.id, room.id, carol.id).await.unwrap().role,
        Role::Owner
    );
    assert_err!(
        chat.member(bob.id, room.id, alice.id).await,
        Error::NotFound(Entity::Member)
    );
    // Then the longest-standing member.
    chat.leave_room(carol.id, room.id).await.unwrap();
    assert_eq!(
        chat.room(bob.id, room.id).await.unwrap().owner,
        Some(bob.id)
    );
    assert_err!(
        chat.leave_room(alice.id, room.id).await,
        Error::NotFound(Entity::Member)
    );
}

pub async fn last_member_leaving_deletes_the_room(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "solo").await;
    chat.send(alice.id, room.id, NewMessage::text("echo"))
        .await
        .unwrap();
    chat.leave_room(alice.id, room.id).await.unwrap();
    assert_err!(
        chat.room(alice.id, room.id).await,
        Error::NotFound(Entity::Room)
    );
}

pub async fn rooms_of_user_lists_memberships(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let one = chat.new_room(&alice, "one").await;
    let two = chat.new_room(&bob, "two").await;
    chat.new_room(&bob, "three").await;
    chat.join_room(alice.id, two.id, None).await.unwrap();
    let direct = chat.direct_room(alice.id, bob.id).await.unwrap();
    let mine = chat
        .rooms_of(alice.id, alice.id, None, None, None)
        .await
        .unwrap()
        .items;
    let listed: Vec<_> = mine.iter().map(|m| (m.room.id, m.member.role)).collect();
    assert_eq!(
        listed,
        [
            (one.id, Role::Owner),
            (two.id, Role::Member),
            (direct.id, Role::Member)
        ]
    );
    // Paged by room id, and searched like public rooms.
    let page = |after, limit| chat.rooms_of(alice.id, alice.id, None, after, Some(limit));
    let first = page(None, 2).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.next_cursor, Some(first.items[1].room.id));
    let rest = page(first.next_cursor, 2).await.unwrap();
    assert_eq!(rest.next_cursor, None, "the last page says so");
    let ids: Vec<_> = first
        .items
        .iter()
        .chain(&rest.items)
        .map(|m| m.room.id)
        .collect();
    assert_eq!(ids, [one.id, two.id, direct.id]);
    let found = chat
        .rooms_of(alice.id, alice.id, Some("TWO"), None, None)
        .await
        .unwrap()
        .items;
    assert_eq!(
        found.iter().map(|m| m.room.id).collect::<Vec<_>>(),
        [two.id]
    );
    assert_err!(
        chat.rooms_of(alice.id, alice.id, None, None, Some(100_000))
            .await,
        Error::Invalid {
            field: Field::Limit,
            ..
        }
    );
    assert_err!(
        chat.rooms_of(alice.id, bob.id, None, None, None).await,
        Error::Forbidden(_)
    );
    let admin = chat
        .create_admin(crate::NewUser::named("root"), None)
        .await
        .unwrap();
    assert_eq!(
        chat.rooms_of(admin.id, bob.id, None, None, None)
            .await
            .unwrap()
            .items
            .len(),
        3
    );
}

pub async fn owner_changes_roles_and_transfers_ownership(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let carol = chat.new_user("carol").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    chat.join_room(carol.id, room.id, None).await.unwrap();
    let promoted = chat
        .set_role(alice.id, room.id, bob.id, Role::Admin)
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Admin);
    // put_member: a role change for a member, an add for anyone else.
    let (same, added) = chat
        .put_member(alice.id, room.id, bob.id, Role::Admin)
        .await
        .unwrap();
    assert_eq!((same.role, added), (Role::Admin, false));
    let dave = chat.new_user("dave").await;
    let (new, added) = chat
        .put_member(alice.id, room.id, dave.id, Role::Member)
        .await
        .unwrap();
    assert_eq!((new.user_id, added), (dave.id, true));
    assert_err!(
        chat.put_member(bob.id, room.id, dave.id, Role::Admin).await,
        Error::Forbidden(Denied::NotOwner)
    );
    assert_err!(
        chat.set_role(bob.id, room.id, carol.id, Role::Admin).await,
        Error::Forbidden(_)
    );
    assert_err!(
        chat.set_role(alice.id, room.id, alice.id, Role::Member)
            .await,
        Error::Forbidden(_)
    );

    let owner = chat
        .set_role(alice.id, room.id, carol.id, Role::Owner)
        .await
        .unwrap();
    assert_eq!(owner.role, Role::Owner);
    assert_eq!(
        chat.room(alice.id, room.id).await.unwrap().owner,
        Some(carol.id)
    );
    assert_eq!(
        chat.member(alice.id, room.id, alice.id).await.unwrap().role,
        Role::Admin
    );
    assert_err!(
        chat.delete_room(alice.id, room.id).await,
        Error::Forbidden(_)
    );
    chat.delete_room(carol.id, room.id).await.unwrap();
}

pub async fn handles_act_as_their_user(h: Harness) {
    let chat = h.chat().await;
    let (alice, bob, carol) = (
        chat.new_user("alice").await,
        chat.new_user("bob").await,
        chat.new_user("carol").await,
    );
    let (me, bob_acts) = (chat.as_user(alice.id), chat.as_user(bob.id));
    let room = me.create_room(NewRoom::named("handles")).await.unwrap();
    let general = me.room(room.id);
    assert_eq!(general.id(), room.id);
    bob_acts.room(room.id).join(None).await.unwrap();
    let sent = bob_acts
        .room(room.id)
        .send(NewMessage::text("hi"))
        .await
        .unwrap();
    assert_eq!(sent.message.sender, bob.id);
    assert_eq!(general.read_state().await.unwrap().unread, 1);
    general.mark_read(sent.message.seq).await.unwrap();
    assert_eq!(me.unread().await.unwrap().total, 0);
    let waved = general.react(sent.message.id, "👋").await.unwrap();
    assert!(waved.reactions[0].me, "alice's own reaction");
    let unwaved = general.unreact(sent.message.id, "👋").await.unwrap();
    assert!(unwaved.reactions.is_empty());
    // The one user id a room handle takes is the other user's.
    general.add_member(carol.id, Role::Admin).await.unwrap();
    let carol_there = chat.member(alice.id, room.id, carol.id).await.unwrap();
    assert_eq!(carol_there.role, Role::Admin);
    assert_err!(
        bob_acts.room(room.id).remove_member(carol.id).await,
        Error::Forbidden(Denied::NotManager)
    );
    general.set_role(bob.id, Role::Owner).await.unwrap();
    assert_eq!(general.info().await.unwrap().owner, Some(bob.id));
    let direct = me.direct_room(bob.id).await.unwrap();
    direct.send(NewMessage::text("psst")).await.unwrap();
    let conversations = bob_acts
        .direct_conversations(None, None)
        .await
        .unwrap()
        .items;
    assert_eq!(conversations.len(), 1);
    assert_eq!(me.rooms(None, None, None).await.unwrap().items.len(), 2);
    assert_eq!(me.account().await.unwrap().id, alice.id);
}
