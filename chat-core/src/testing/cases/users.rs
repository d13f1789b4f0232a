//! Users, profiles, the directory and admin rights.

use crate::Field;
use crate::testing::Harness;
use crate::{Conflict, Entity, Error, NewUser, Profile, Role, Status, UserId, UserUpdate};

pub async fn users_are_created_and_found_by_name_and_email(h: Harness) {
    let chat = h.chat().await;
    let new = NewUser {
        username: "Alice".into(),
        email: Some("Alice@Example.com".into()),
        display_name: Some("Alice A.".into()),
        profile: Profile {
            first_name: Some("Alice".into()),
            phone: Some("+1 555 0100".into()),
            ..Profile::default()
        },
    };
    let alice = chat.create_user(new).await.unwrap();
    assert_eq!(alice.username, "alice");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(alice.display_name, "Alice A.");
    assert!(!alice.is_admin);
    assert_eq!(alice.status, Status::Offline);

    assert_eq!(chat.user(alice.id, alice.id).await.unwrap(), alice);
    let by_name = chat.store.user_by_username("alice").await.unwrap();
    assert_eq!(by_name.as_ref(), Some(&alice));
    let by_email = chat.store.user_by_email("alice@example.com").await.unwrap();
    assert_eq!(by_email.as_ref(), Some(&alice));
    // The host's lookup, for mapping its own accounts: any case, and none for a stranger.
    let for_host = chat.user_by_username(" ALICE ").await.unwrap();
    assert_eq!(for_host.as_ref(), Some(&alice));
    assert_eq!(chat.user_by_username("nobody").await.unwrap(), None);

    let bob = chat.new_user("bob").await;
    assert_eq!(
        bob.display_name, "bob",
        "display name defaults to the username"
    );
}

pub async fn usernames_are_unique_case_insensitively(h: Harness) {
    let chat = h.chat().await;
    chat.new_user("alice").await;
    assert_err!(
        chat.create_user(NewUser::named("ALICE")).await,
        Error::Conflict(Conflict::UsernameTaken)
    );
    assert_err!(
        chat.register(NewUser::named("Alice"), "long enough password")
            .await,
        Error::Conflict(Conflict::UsernameTaken)
    );
}

pub async fn emails_are_unique(h: Harness) {
    let chat = h.chat().await;
    let with_email = |name: &str, email: &str| NewUser {
        email: Some(email.into()),
        ..NewUser::named(name)
    };
    chat.create_user(with_email("alice", "a@example.com"))
        .await
        .unwrap();
    assert_err!(
        chat.create_user(with_email("bob", "A@EXAMPLE.COM")).await,
        Error::Conflict(Conflict::EmailTaken)
    );
    let carol = chat
        .create_user(with_email("carol", "c@example.com"))
        .await
        .unwrap();
    let update = UserUpdate {
        email: Some(Some("a@example.com".into())),
        ..UserUpdate::default()
    };
    assert_err!(
        chat.update_user(carol.id, carol.id, update).await,
        Error::Conflict(Conflict::EmailTaken)
    );
    // A freed address can be taken.
    let clear = UserUpdate {
        email: Some(None),
        ..UserUpdate::default()
    };
    chat.update_user(carol.id, carol.id, clear).await.unwrap();
    chat.create_user(with_email("dave", "c@example.com"))
        .await
        .unwrap();
}

pub async fn email_changes_are_limited_like_logins(h: Harness) {
    let chat = h.chat().await;
    let peer = chat.peer();
    let email = |address: &str| UserUpdate {
        email: Some(Some(address.into())),
        ..UserUpdate::default()
    };
    let alice = chat.new_user("alice").await;
    chat.update_user(alice.id, alice.id, email("alice@example.com"))
        .await
        .unwrap();
    let mallory = chat.new_user("mallory").await;
    // Guesses and changes of one's own count alike, on every engine: five in the window.
    for n in 0..4 {
        let engine = if n % 2 == 0 { &chat.chat } else { &peer };
        assert_err!(
            engine
                .update_user(mallory.id, mallory.id, email("alice@example.com"))
                .await,
            Error::Conflict(Conflict::EmailTaken)
        );
    }
    chat.update_user(mallory.id, mallory.id, email("m@example.com"))
        .await
        .unwrap();
    for guess in ["alice@example.com", "m2@example.com"] {
        assert_err!(
            peer.update_user(mallory.id, mallory.id, email(guess)).await,
            Error::RateLimited { .. }
        );
    }
    // Other changes, and other users, are not held up; an admin is not limited.
    let status = UserUpdate {
        status_message: Some(Some("busy".into())),
        ..UserUpdate::default()
    };
    chat.update_user(mallory.id, mallory.id, status)
        .await
        .unwrap();
    chat.update_user(alice.id, alice.id, email("a2@example.com"))
        .await
        .unwrap();
    let root = chat
        .create_admin(NewUser::named("root"), None)
        .await
        .unwrap();
    chat.update_user(root.id, mallory.id, email("m3@example.com"))
        .await
        .unwrap();
    // The window passes.
    let window = chrono::TimeDelta::from_std(chat.config().failed_login_window).unwrap();
    chat.clock.advance(window);
    chat.update_user(mallory.id, mallory.id, email("m4@example.com"))
        .await
        .unwrap();
}

pub async fn invalid_user_input_is_rejected(h: Harness) {
    let chat = h.chat().await;
    for bad in [
        "",
        "ab",
        "has space",
        "émile",
        "semi;colon",
        &"x".repeat(33),
    ] {
        assert_err!(
            chat.create_user(NewUser::named(bad)).await,
            Error::Invalid {
                field: Field::Username,
                ..
            }
        );
    }
    let bad_email = NewUser {
        email: Some("not-an-email".into()),
        ..NewUser::named("alice")
    };
    assert_err!(
        chat.create_user(bad_email).await,
        Error::Invalid {
            field: Field::Email,
            ..
        }
    );
    let long_name = NewUser {
        display_name: Some("n".repeat(65)),
        ..NewUser::named("alice")
    };
    assert_err!(
        chat.create_user(long_name).await,
        Error::Invalid {
            field: Field::DisplayName,
            ..
        }
    );
    let control = NewUser {
        profile: Profile {
            last_name: Some("evil\u{7}".into()),
            ..Profile::default()
        },
        ..NewUser::named("alice")
    };
    assert_err!(
        chat.create_user(control).await,
        Error::Invalid {
            field: Field::ProfileLastName,
            ..
        }
    );
    // Nothing was stored by the failed attempts.
    assert!(
        chat.store
            .user_by_username("alice")
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn directory_lists_public_entries_with_search_and_cursor(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    for name in ["bob", "bobby", "carol", "robert"] {
        chat.new_user(name).await;
    }
    let all = chat
        .directory(alice.id, None, None, None)
        .await
        .unwrap()
        .items;
    let names: Vec<_> = all.iter().map(|e| e.username.as_str()).collect();
    assert_eq!(names, ["alice", "bob", "bobby", "carol", "robert"]);

    let bobs = chat
        .directory(alice.id, Some("OB"), None, None)
        .await
        .unwrap()
        .items;
    let names: Vec<_> = bobs.iter().map(|e| e.username.as_str()).collect();
    assert_eq!(names, ["bob", "bobby", "robert"]);

    let page = chat
        .directory(alice.id, None, Some("bob"), Some(2))
        .await
        .unwrap();
    let names: Vec<_> = page.items.iter().map(|e| e.username.as_str()).collect();
    assert_eq!(names, ["bobby", "carol"]);
    assert_eq!(page.next_cursor.as_deref(), Some("carol"));
    let last = chat
        .directory(alice.id, None, page.next_cursor.as_deref(), Some(2))
        .await
        .unwrap();
    let names: Vec<_> = last.items.iter().map(|e| e.username.as_str()).collect();
    assert_eq!((names, last.next_cursor), (vec!["robert"], None));

    assert_err!(
        chat.directory(alice.id, None, None, Some(0)).await,
        Error::Invalid {
            field: Field::Limit,
            ..
        }
    );
    let bob = chat.store.user_by_username("bob").await.unwrap().unwrap();
    assert_eq!(
        chat.directory_entry(alice.id, bob.id).await.unwrap(),
        bob.directory_entry()
    );
    // The view of a user: public for others, whole for oneself and admins.
    assert_eq!(
        chat.user_view(alice.id, bob.id).await.unwrap(),
        crate::UserView::Public(bob.directory_entry())
    );
    assert_eq!(
        chat.user_view(bob.id, bob.id).await.unwrap(),
        crate::UserView::Full(bob.clone())
    );
    let root = chat
        .create_admin(NewUser::named("root"), None)
        .await
        .unwrap();
    assert_eq!(
        chat.user_view(root.id, bob.id).await.unwrap(),
        crate::UserView::Full(bob)
    );
}

pub async fn only_admins_list_and_manage_users(h: Harness) {
    let chat = h.chat().await;
    let admin = chat
        .create_admin(NewUser::named("root"), Some("admin password"))
        .await
        .unwrap();
    assert!(admin.is_admin);
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;

    assert_eq!(
        chat.list_users(admin.id, None, None, None)
            .await
            .unwrap()
            .items
            .len(),
        3
    );
    assert_err!(
        chat.list_users(alice.id, None, None, None).await,
        Error::Forbidden(_)
    );
    assert_err!(chat.user(alice.id, bob.id).await, Error::Forbidden(_));
    assert_eq!(chat.user(admin.id, bob.id).await.unwrap().id, bob.id);

    let rename = UserUpdate {
        display_name: Some("Robert".into()),
        ..UserUpdate::default()
    };
    assert_err!(
        chat.update_user(alice.id, bob.id, rename.clone()).await,
        Error::Forbidden(_)
    );
    assert_eq!(
        chat.update_user(admin.id, bob.id, rename)
            .await
            .unwrap()
            .display_name,
        "Robert"
    );

    let promote = UserUpdate {
        is_admin: Some(true),
        ..UserUpdate::default()
    };
    assert_err!(
        chat.update_user(alice.id, alice.id, promote.clone()).await,
        Error::Forbidden(_)
    );
    assert!(
        chat.update_user(admin.id, alice.id, promote)
            .await
            .unwrap()
            .is_admin
    );
    let demote_self = UserUpdate {
        is_admin: Some(false),
        ..UserUpdate::default()
    };
    assert_err!(
        chat.update_user(admin.id, admin.id, demote_self).await,
        Error::Forbidden(_)
    );

    assert_err!(
        chat.delete_user(bob.id, alice.id).await,
        Error::Forbidden(_)
    );
    chat.delete_user(admin.id, bob.id).await.unwrap();
    assert_err!(
        chat.user(admin.id, bob.id).await,
        Error::NotFound(Entity::User)
    );
    assert_err!(
        chat.delete_user(admin.id, bob.id).await,
        Error::NotFound(Entity::User)
    );
}

pub async fn users_update_profile_and_status(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    chat.clock.advance(chrono::TimeDelta::seconds(5));
    let update = UserUpdate {
        profile: Some(Profile {
            first_name: Some("Alice".into()),
            last_name: Some("Liddell".into()),
            address: Some("1 Rabbit Hole".into()),
            ..Profile::default()
        }),
        status: Some(Status::Busy),
        status_message: Some(Some("  down the hole  ".into())),
        ..UserUpdate::default()
    };
    let updated = chat.update_user(alice.id, alice.id, update).await.unwrap();
    assert_eq!(updated.status, Status::Busy);
    assert_eq!(updated.status_message.as_deref(), Some("down the hole"));
    assert_eq!(updated.profile.last_name.as_deref(), Some("Liddell"));
    assert!(updated.updated_at > alice.updated_at);
    assert_eq!(chat.user(alice.id, alice.id).await.unwrap(), updated);

    let too_long = UserUpdate {
        status_message: Some(Some("s".repeat(201))),
        ..UserUpdate::default()
    };
    assert_err!(
        chat.update_user(alice.id, alice.id, too_long).await,
        Error::Invalid {
            field: Field::StatusMessage,
            ..
        }
    );
}

pub async fn deleting_a_user_hands_on_rooms_and_ends_logins(h: Harness) {
    let chat = h.chat().await;
    let alice = chat
        .register(NewUser::named("alice"), "alice password")
        .await
        .unwrap();
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    chat.send(alice.id, room.id, crate::NewMessage::text("bye"))
        .await
        .unwrap();
    chat.send_direct(bob.id, alice.id, crate::NewMessage::text("hi"))
        .await
        .unwrap();
    let login = chat
        .login(
            crate::auth::LoginName::Username("alice".into()),
            "alice password",
        )
        .await
        .unwrap();

    chat.delete_user(alice.id, alice.id).await.unwrap();

    assert_err!(
        chat.authenticate(&login.tokens.access_token).await,
        Error::Unauthenticated
    );
    let room = chat.room(bob.id, room.id).await.unwrap();
    assert_eq!(room.owner, Some(bob.id));
    assert_eq!(room.member_count, 1);
    assert_eq!(
        chat.member(bob.id, room.id, bob.id).await.unwrap().role,
        Role::Owner
    );
    // Messages stay; the direct conversation keeps its history for the other side.
    assert_eq!(
        chat.history(bob.id, room.id, Default::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let direct = chat
        .direct_conversations(bob.id, None, None)
        .await
        .unwrap()
        .items;
    assert_eq!(direct.len(), 1);
    assert_eq!(direct[0].other, None);
    assert_eq!(direct[0].last_message.as_ref().unwrap().body, "hi");
    // The username is free again.
    chat.create_user(NewUser::named("alice")).await.unwrap();
}

pub async fn unknown_actor_is_unauthenticated(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let room = chat.new_room(&alice, "general").await;
    let ghost = UserId(uuid::Uuid::from_u128(u128::MAX));
    assert_err!(
        chat.create_room(ghost, crate::NewRoom::named("x")).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.join_room(ghost, room.id, None).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.send(ghost, room.id, crate::NewMessage::text("boo"))
            .await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.directory(ghost, None, None, None).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.directory_entry(alice.id, ghost).await,
        Error::NotFound(Entity::User)
    );
}

pub async fn deleted_users_can_do_nothing(h: Harness) {
    let chat = h.chat().await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.new_room(&alice, "general").await;
    chat.join_room(bob.id, room.id, None).await.unwrap();
    let direct = chat
        .send_direct(alice.id, bob.id, crate::NewMessage::text("hi bob"))
        .await
        .unwrap()
        .message
        .room_id;
    chat.delete_user(bob.id, bob.id).await.unwrap();

    // Alice keeps the conversation; bob, gone, neither posts nor reads in it, nor anywhere.
    assert_eq!(
        chat.history(alice.id, direct, crate::HistoryQuery::newest(10))
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let text = || crate::NewMessage::text("from beyond");
    for room_id in [direct, room.id] {
        let sent = chat.send(bob.id, room_id, text()).await;
        assert!(
            matches!(sent, Err(Error::Unauthenticated | Error::Forbidden(_))),
            "{sent:?}"
        );
        let read = chat
            .history(bob.id, room_id, crate::HistoryQuery::newest(10))
            .await;
        assert!(
            matches!(read, Err(Error::Unauthenticated | Error::Forbidden(_))),
            "{read:?}"
        );
    }
    assert_err!(
        chat.send_direct(bob.id, alice.id, text()).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.mark_read(bob.id, direct, 1).await,
        Error::Unauthenticated
    );
    assert_err!(
        chat.typing(bob.id, direct, true).await,
        Error::Unauthenticated
    );
}
