//! Several engines on one store and one bus, as several processes would be: nothing a user can
//! observe may depend on which engine served them.

use std::sync::Arc;

use chrono::TimeDelta;

use super::events::{drain, next};
use crate::auth::{Authenticated, LoginName};
use crate::events::{Event, InProcessBus, Subscription};
use crate::store::NewStoredMessage;
use crate::testing::Harness;
use crate::testing::follower::Follower;
use crate::{Error, MessageId, NewMessage, NewUser};

const PASSWORD: &str = "correct horse battery";

fn username(name: &str) -> LoginName {
    LoginName::Username(name.into())
}

pub async fn engines_deliver_every_message_once_in_order(h: Harness) {
    let a = h.chat().await;
    let b = a.peer();
    let owner = a.new_user("owner").await;
    let room = a.new_room(&owner, "shared").await;
    let mut on_a = a.subscribe(owner.id).await.unwrap();
    let mut on_b = b.subscribe(owner.id).await.unwrap();
    let mut tasks = Vec::new();
    for (i, engine) in [Arc::clone(&a.chat), Arc::clone(&b), a.peer()]
        .into_iter()
        .enumerate()
    {
        let user = a.new_user(&format!("sender{i}")).await;
        engine.join_room(user.id, room.id, None).await.unwrap();
        tasks.push(tokio::spawn(async move {
            for j in 0..30 {
                let new = NewMessage::text(format!("{i}:{j}"));
                engine.send(user.id, room.id, new).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let all: Vec<u64> = (1..=90).collect();
    for (engine, feed) in [(&a.chat, &mut on_a), (&b, &mut on_b)] {
        let mut client = Follower::new(engine, owner.id, room.id);
        client.follow(feed, 90).await;
        assert_eq!(client.seen(), all);
    }
    assert!(drain(&mut on_a).await.is_empty(), "each message once");
}

/// Appends a message straight to the store, as another path or process would: no event.
async fn append_unpublished(
    chat: &crate::testing::TestChat,
    room: crate::RoomId,
    sender: crate::UserId,
    body: &str,
) {
    let id = MessageId(uuid::Uuid::now_v7());
    let message = NewStoredMessage::text(id, room, sender, body, crate::testing::epoch());
    chat.store.append_message(&message).await.unwrap();
}

pub async fn an_append_through_the_store_does_not_stall_the_room(h: Harness) {
    let chat = h.chat().await;
    let owner = chat.new_user("owner").await;
    let room = chat.new_room(&owner, "room").await;
    let mut feed = chat.subscribe(owner.id).await.unwrap();
    chat.send(owner.id, room.id, NewMessage::text("one"))
        .await
        .unwrap();
    // Another path appends without publishing anything.
    append_unpublished(&chat, room.id, owner.id, "two, behind the engine's back").await;
    chat.send(owner.id, room.id, NewMessage::text("three"))
        .await
        .unwrap();
    chat.send(owner.id, room.id, NewMessage::text("four"))
        .await
        .unwrap();
    let mut bodies = Vec::new();
    while bodies.len() < 4 {
        if let Event::MessageCreated { message } = &*next(&mut feed).await.unwrap() {
            bodies.push(message.body.clone());
        }
    }
    assert_eq!(
        bodies,
        ["one", "two, behind the engine's back", "three", "four"]
    );
}

pub async fn one_missing_message_behind_many_held_is_read_not_skipped(h: Harness) {
    let chat = h.chat().await;
    let owner = chat.new_user("owner").await;
    let room = chat.new_room(&owner, "room").await;
    let mut feed = chat.subscribe(owner.id).await.unwrap();
    // Message 1 is appended without an event (a publisher that stalled, another process);
    // then 300 published ones follow, more than a feed holds while it waits.
    append_unpublished(&chat, room.id, owner.id, "late").await;
    for n in 0..300 {
        chat.send(owner.id, room.id, NewMessage::text(format!("{n}")))
            .await
            .unwrap();
    }
    let mut seqs = Vec::new();
    while seqs.len() < 301 {
        match &*next(&mut feed).await.unwrap() {
            Event::MessageCreated { message } => seqs.push(message.seq),
            Event::Resync => panic!("one missing message is no reason to resync"),
            _ => {}
        }
    }
    assert_eq!(seqs, (1..=301).collect::<Vec<u64>>());
}

pub async fn removal_during_a_lag_silences_the_room(h: Harness) {
    let bus = Arc::new(InProcessBus::new(4));
    let chat = h.chat_with(move |builder| builder.bus(bus.clone())).await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let room = chat.create_room(alice.id, private_room()).await.unwrap();
    chat.add_member(alice.id, room.id, bob.id, crate::Role::Member)
        .await
        .unwrap();
    let mut feed = chat.subscribe(bob.id).await.unwrap();
    // Bob's feed stalls (nobody reads it) while he is removed and the room goes on.
    for i in 0..10 {
        chat.send(alice.id, room.id, NewMessage::text(format!("before {i}")))
            .await
            .unwrap();
    }
    chat.remove_member(alice.id, room.id, bob.id).await.unwrap();
    for i in 0..10 {
        chat.send(alice.id, room.id, NewMessage::text(format!("after {i}")))
            .await
            .unwrap();
    }
    assert_eq!(*feed.recv().await.unwrap(), Event::Resync);
    chat.send(alice.id, room.id, NewMessage::text("later"))
        .await
        .unwrap();
    // Long enough for any gap to be filled from the store.
    let quiet = 3 * chat.config().gap_wait;
    while let Ok(event) = tokio::time::timeout(quiet, feed.recv()).await {
        let event = event.expect("the feed goes on");
        assert_ne!(
            event.room_id(),
            Some(room.id),
            "bob hears nothing more of the room"
        );
    }
}

pub async fn joining_during_a_lag_delivers_the_room(h: Harness) {
    let bus = Arc::new(InProcessBus::new(4));
    let chat = h.chat_with(move |builder| builder.bus(bus.clone())).await;
    let alice = chat.new_user("alice").await;
    let bob = chat.new_user("bob").await;
    let busy = chat.new_room(&bob, "busy").await;
    let room = chat.create_room(alice.id, private_room()).await.unwrap();
    let mut feed = chat.subscribe(bob.id).await.unwrap();
    chat.add_member(alice.id, room.id, bob.id, crate::Role::Member)
        .await
        .unwrap();
    // The news of the join is pushed out of the bus before bob's feed reads it.
    for i in 0..10 {
        chat.send(bob.id, busy.id, NewMessage::text(format!("{i}")))
            .await
            .unwrap();
    }
    assert_eq!(*feed.recv().await.unwrap(), Event::Resync);
    drain(&mut feed).await;
    let sent = chat
        .send(alice.id, room.id, NewMessage::text("welcome"))
        .await
        .unwrap();
    let events = drain(&mut feed).await;
    assert!(
        events
            .iter()
            .any(|e| e.message_id() == Some(sent.message.id)),
        "the room joined during the lag delivers: {events:?}"
    );
}

fn private_room() -> crate::NewRoom {
    crate::NewRoom {
        visibility: crate::Visibility::Private,
        ..crate::NewRoom::named("private")
    }
}

async fn registered(chat: &crate::Chat, name: &str) -> crate::User {
    let new = NewUser {
        email: Some(format!("{name}@example.com")),
        ..NewUser::named(name)
    };
    chat.register(new, PASSWORD).await.unwrap()
}

async fn login(chat: &crate::Chat, name: &str) -> (String, Authenticated) {
    let login = chat.login(username(name), PASSWORD).await.unwrap();
    let auth = chat.authenticate(&login.tokens.access_token).await.unwrap();
    (login.tokens.access_token, auth)
}

/// Whether the feed's next event says its login ended, after which it ends.
async fn ends_with_login(feed: &mut Subscription) -> bool {
    loop {
        match next(feed).await {
            Some(event) if matches!(*event, Event::LoginEnded { .. }) => {
                return next(feed).await.is_none();
            }
            Some(_) => {}
            None => return false,
        }
    }
}

pub async fn ending_a_login_ends_its_feeds_on_every_engine(h: Harness) {
    let a = h.chat().await;
    let b = a.peer();
    let alice = registered(&a, "alice").await;
    let (token, first) = login(&a, "alice").await;
    let (_, second) = login(&b, "alice").await;
    let mut first_on_b = b.subscribe_login(first).await.unwrap();
    let mut second_on_b = b.subscribe_login(second).await.unwrap();

    // Logout on A ends that login's feed on B, and only that one.
    a.logout(&token).await.unwrap();
    assert!(ends_with_login(&mut first_on_b).await);
    assert_err!(b.subscribe_login(first).await, Error::Unauthenticated);
    let room = a.new_room(&alice, "still here").await;
    match &*next(&mut second_on_b).await.unwrap() {
        Event::MemberJoined { member } => assert_eq!(member.room_id, room.id),
        other => panic!("unexpected {other:?}"),
    }

    // A replayed refresh token ends its login everywhere.
    let login = b.login(username("alice"), PASSWORD).await.unwrap();
    let auth = b.authenticate(&login.tokens.access_token).await.unwrap();
    let mut replayed = a.subscribe_login(auth).await.unwrap();
    b.refresh(&login.tokens.refresh_token).await.unwrap();
    assert_err!(
        a.refresh(&login.tokens.refresh_token).await,
        Error::Unauthenticated
    );
    assert!(ends_with_login(&mut replayed).await);

    // A password change ends every login, an account deletion every feed.
    a.change_password(alice.id, PASSWORD, "another good password")
        .await
        .unwrap();
    assert!(ends_with_login(&mut second_on_b).await);
    let bob = a.new_user("bob").await;
    let mut bob_on_b = b.subscribe(bob.id).await.unwrap();
    a.delete_user(bob.id, bob.id).await.unwrap();
    assert!(ends_with_login(&mut bob_on_b).await);
    assert_err!(b.subscribe(bob.id).await, Error::Unauthenticated);
}

pub async fn a_cached_token_ends_with_its_login_on_every_engine(h: Harness) {
    let a = h.chat().await;
    let b = a.peer();
    let alice = registered(&a, "alice").await;
    // Each check on B after the first is answered from B's cache: what ends the token on A
    // must reach it.
    let cached_on_b = async |token: &str| {
        for _ in 0..2 {
            assert_eq!(b.authenticate(token).await.unwrap().user_id, alice.id);
        }
    };

    let (token, _) = login(&a, "alice").await;
    cached_on_b(&token).await;
    a.logout(&token).await.unwrap();
    assert_err!(b.authenticate(&token).await, Error::Unauthenticated);

    let refreshed = a.login(username("alice"), PASSWORD).await.unwrap().tokens;
    cached_on_b(&refreshed.access_token).await;
    let next = a.refresh(&refreshed.refresh_token).await.unwrap();
    assert_err!(
        b.authenticate(&refreshed.access_token).await,
        Error::Unauthenticated
    );
    cached_on_b(&next.access_token).await;

    // Every login at once, with the password change; and on the engine that made it.
    let (other, _) = login(&b, "alice").await;
    cached_on_b(&other).await;
    a.authenticate(&other).await.unwrap();
    b.change_password(alice.id, PASSWORD, "another good password")
        .await
        .unwrap();
    for token in [&next.access_token, &other] {
        assert_err!(b.authenticate(token).await, Error::Unauthenticated);
        assert_err!(a.authenticate(token).await, Error::Unauthenticated);
    }

    // An expired token is not kept past its expiry.
    let login = a.login(username("alice"), "another good password").await;
    let token = login.unwrap().tokens.access_token;
    cached_on_b(&token).await;
    a.clock.advance(TimeDelta::hours(2));
    assert_err!(b.authenticate(&token).await, Error::Unauthenticated);
}

pub async fn tickets_work_once_on_any_engine_and_die_with_their_login(h: Harness) {
    let a = h.chat().await;
    let b = a.peer();
    let alice = registered(&a, "alice").await;
    let (token, auth) = login(&a, "alice").await;

    let ticket = a.issue_ticket(auth).await.unwrap();
    let feed = b.subscribe_with_ticket(&ticket.ticket).await.unwrap();
    assert_eq!(
        (feed.user(), feed.session()),
        (alice.id, Some(auth.session_id))
    );
    assert_err!(
        a.subscribe_with_ticket(&ticket.ticket).await,
        Error::Unauthenticated
    );
    assert_err!(
        b.subscribe_with_ticket("made-up").await,
        Error::Unauthenticated
    );

    // Expired.
    let late = a.issue_ticket(auth).await.unwrap();
    a.clock.advance(TimeDelta::seconds(31));
    assert_err!(
        b.subscribe_with_ticket(&late.ticket).await,
        Error::Unauthenticated
    );

    // Asked for before the logout, redeemed after it.
    let before_logout = a.issue_ticket(auth).await.unwrap();
    b.logout(&token).await.unwrap();
    assert_err!(
        a.subscribe_with_ticket(&before_logout.ticket).await,
        Error::Unauthenticated
    );
    assert_err!(a.issue_ticket(auth).await, Error::Unauthenticated);

    // Asked for before the account was deleted.
    let (_, auth) = login(&b, "alice").await;
    let before_deletion = b.issue_ticket(auth).await.unwrap();
    a.delete_user(alice.id, alice.id).await.unwrap();
    assert_err!(
        b.subscribe_with_ticket(&before_deletion.ticket).await,
        Error::Unauthenticated
    );
}

pub async fn failed_logins_share_one_budget_on_every_engine(h: Harness) {
    let a = h.chat().await;
    let b = a.peer();
    registered(&a, "alice").await;
    let email = || LoginName::Email("Alice@Example.com".into());
    for _ in 0..3 {
        assert_err!(
            a.login(username("alice"), "wrong password").await,
            Error::Unauthenticated
        );
    }
    for _ in 0..2 {
        assert_err!(
            b.login(email(), "wrong password").await,
            Error::Unauthenticated
        );
    }
    // Five failures by name or email, on either engine: locked, even for the right password.
    match a.login(username("alice"), PASSWORD).await {
        Err(Error::RateLimited { retry_after }) => {
            assert!(retry_after > std::time::Duration::ZERO);
            assert!(retry_after <= a.config().failed_login_window);
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_err!(b.login(email(), PASSWORD).await, Error::RateLimited { .. });
    // Unknown names behave the same, so a lock does not tell that an account exists.
    for _ in 0..5 {
        assert_err!(
            b.login(username("nobody"), PASSWORD).await,
            Error::Unauthenticated
        );
    }
    assert_err!(
        a.login(username("nobody"), PASSWORD).await,
        Error::RateLimited { .. }
    );
    // The window ends; a success clears the count.
    a.clock
        .advance(TimeDelta::from_std(a.config().failed_login_window).unwrap());
    a.login(username("alice"), PASSWORD).await.unwrap();
    for _ in 0..4 {
        assert_err!(
            b.login(email(), "wrong password").await,
            Error::Unauthenticated
        );
    }
    a.login(username("alice"), PASSWORD).await.unwrap();
}

pub async fn concurrent_wrong_passwords_cannot_exceed_the_budget(h: Harness) {
    let a = h.chat().await;
    let b = a.peer();
    registered(&a, "alice").await;
    let attempts = (0..30).map(|i| {
        let engine = if i % 2 == 0 {
            Arc::clone(&a.chat)
        } else {
            Arc::clone(&b)
        };
        tokio::spawn(async move { engine.login(username("alice"), "wrong password").await })
    });
    let (mut refused, mut limited) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Err(Error::Unauthenticated) => refused += 1,
            Err(Error::RateLimited { .. }) => limited += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((refused, limited), (5, 25));
}

pub async fn online_is_seen_from_every_engine_and_expires(h: Harness) {
    let a = h.chat().await;
    let b = a.peer();
    let alice = a.new_user("alice").await;
    let carol = a.new_user("carol").await;
    let online = |engine: Arc<crate::Chat>| async move {
        engine
            .online(carol.id, &[alice.id, carol.id])
            .await
            .unwrap()
    };
    assert!(online(Arc::clone(&b)).await.is_empty());
    let feed = a.subscribe(alice.id).await.unwrap();
    assert_eq!(online(Arc::clone(&b)).await, [alice.id].into());
    feed.close().await;
    assert!(online(Arc::clone(&b)).await.is_empty());

    // An engine that stops renewing (a crashed process) leaves nobody online for long.
    let _feed = a.subscribe(alice.id).await.unwrap();
    assert_eq!(online(Arc::clone(&b)).await, [alice.id].into());
    let ttl = TimeDelta::from_std(a.config().connection_ttl).unwrap();
    a.clock.advance(ttl + TimeDelta::seconds(1));
    assert!(online(Arc::clone(&b)).await.is_empty());
    assert!(b.purge_expired().await.unwrap() >= 1);
}

pub async fn room_password_guesses_are_limited_on_every_engine(h: Harness) {
    let a = h.chat().await;
    let b = a.peer();
    let alice = a.new_user("alice").await;
    let mallory = a.new_user("mallory").await;
    let vault = crate::NewRoom {
        password: Some("open sesame".into()),
        ..crate::NewRoom::named("vault")
    };
    let room = a.create_room(alice.id, vault).await.unwrap();
    for guess in 0..5 {
        let engine = if guess % 2 == 0 { &a.chat } else { &b };
        assert_err!(
            engine
                .join_room(mallory.id, room.id, Some(&format!("guess {guess}")))
                .await,
            Error::Forbidden(_)
        );
    }
    // Locked, even for the right password, until the window ends.
    assert_err!(
        a.join_room(mallory.id, room.id, Some("open sesame")).await,
        Error::RateLimited { .. }
    );
    let window = TimeDelta::from_std(a.config().failed_login_window).unwrap();
    a.clock.advance(window);
    b.join_room(mallory.id, room.id, Some("open sesame"))
        .await
        .unwrap();
}
