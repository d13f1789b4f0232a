//! Every route through `Router` + `oneshot`: success, and each error status it can answer.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{App, open_limits};
use serde_json::json;

#[tokio::test]
async fn register_login_refresh_logout() {
    let app = App::new();
    let body = json!({
        "username": "Alice", "password": "alice-password", "email": "alice@example.com",
        "display_name": "Alice", "profile": { "first_name": "Alice", "phone": "+1 555" }
    });
    let registered = app
        .call(Method::POST, "/auth/register", None, Some(body.clone()))
        .await;
    assert_eq!(registered.status, StatusCode::CREATED);
    assert_eq!(registered.body["username"], "alice");
    assert_eq!(registered.body["profile"]["phone"], "+1 555");
    assert!(registered.body.get("password").is_none());

    let again = app
        .call(Method::POST, "/auth/register", None, Some(body))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "username_taken")
    );
    let bad = json!({ "username": "a b", "password": "long enough" });
    let bad = app
        .call(Method::POST, "/auth/register", None, Some(bad))
        .await;
    assert_eq!(
        (bad.status, bad.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
    );
    let short = json!({ "username": "bob", "password": "short" });
    let short = app
        .call(Method::POST, "/auth/register", None, Some(short))
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown_field = json!({ "username": "bob", "password": "long enough", "admin": true });
    let unknown_field = app
        .call(Method::POST, "/auth/register", None, Some(unknown_field))
        .await;
    assert_eq!(unknown_field.status, StatusCode::UNPROCESSABLE_ENTITY);

    let login = json!({ "email": "ALICE@example.com", "password": "alice-password" });
    let login = app
        .call(Method::POST, "/auth/login", None, Some(login))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    assert_eq!(login.body["token_type"], "Bearer");
    assert!(login.body["expires_in"].as_i64().unwrap() > 0);
    let access = login.body["access_token"].as_str().unwrap().to_owned();
    let refresh = login.body["refresh_token"].as_str().unwrap().to_owned();

    let wrong = json!({ "username": "alice", "password": "wrong-password" });
    let wrong = app
        .call(Method::POST, "/auth/login", None, Some(wrong))
        .await;
    let nobody = json!({ "username": "nobody", "password": "wrong-password" });
    let nobody = app
        .call(Method::POST, "/auth/login", None, Some(nobody))
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(
        wrong.body, nobody.body,
        "unknown user and wrong password look the same"
    );
    let both = json!({ "username": "alice", "email": "a@b.c", "password": "x" });
    let both = app
        .call(Method::POST, "/auth/login", None, Some(both))
        .await;
    assert_eq!(both.status, StatusCode::UNPROCESSABLE_ENTITY);

    let refreshed = app
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh })),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK);
    assert_eq!(
        app.get("/users/me", &access).await.status,
        StatusCode::UNAUTHORIZED
    );
    let access = refreshed.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/users/me", &access).await.status, StatusCode::OK);
    let replay = app
        .call(
            Method::POST,
            "/auth/refresh",
            None,
            Some(json!({ "refresh_token": refresh })),
        )
        .await;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get("/users/me", &access).await.status,
        StatusCode::UNAUTHORIZED,
        "reuse revoked the login"
    );

    let (token, _) = app.signup("bob").await;
    let ticket = app.post("/auth/ws-ticket", &token, json!({})).await;
    assert_eq!(ticket.status, StatusCode::OK);
    // 256 random bits, base64url.
    assert_eq!(ticket.body["ticket"].as_str().unwrap().len(), 43);
    assert!(ticket.body["expires_in"].as_u64().unwrap() <= 30);
    let out = app
        .call(Method::POST, "/auth/logout", Some(&token), None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/users/me", &token).await.status,
        StatusCode::UNAUTHORIZED
    );
    let anonymous = app.call(Method::GET, "/users/me", None, None).await;
    assert_eq!(
        (anonymous.status, anonymous.code()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
}

#[tokio::test]
async fn malformed_and_oversized_requests() {
    let app = App::new();
    let (token, _) = app.signup("alice").await;
    let request = Request::post("/api/v1/rooms")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"name\": "))
        .unwrap();
    let broken = app.raw(request).await;
    assert_eq!(
        (broken.status, broken.code()),
        (StatusCode::BAD_REQUEST, "malformed")
    );
    let wrong_type = app.post("/rooms", &token, json!({ "name": 5 })).await;
    assert_eq!(wrong_type.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_id = app.get("/rooms/not-a-uuid", &token).await;
    assert_eq!(
        (bad_id.status, bad_id.code()),
        (StatusCode::BAD_REQUEST, "malformed")
    );
    let bad_query = app.get("/users?limit=lots", &token).await;
    assert_eq!(bad_query.status, StatusCode::BAD_REQUEST);
    let room = app.room(&token, json!({ "name": "general" })).await;
    let huge = json!({ "body": "x".repeat(70 * 1024) });
    let huge = app
        .post(&format!("/rooms/{room}/messages"), &token, huge)
        .await;
    assert_eq!(
        (huge.status, huge.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    let long = json!({ "body": "x".repeat(16_001) });
    let long = app
        .post(&format!("/rooms/{room}/messages"), &token, long)
        .await;
    assert_eq!(
        (long.status, long.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid")
    );
    let nowhere = app.get("/no/such/route", &token).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    let history = app.get(&format!("/rooms/{room}/messages"), &token).await;
    assert_eq!(
        history.body["items"].as_array().unwrap().len(),
        0,
        "nothing invalid was stored"
    );
}

#[tokio::test]
async fn users_profiles_directory_and_admins() {
    let app = App::new();
    let (alice, alice_id) = app.signup("alice").await;
    let (bob, bob_id) = app.signup("bob").await;
    app.chat
        .create_admin(chat_core::NewUser::named("root"), Some("root-password"))
        .await
        .unwrap();
    let login = json!({ "username": "root", "password": "root-password" });
    let root = app
        .call(Method::POST, "/auth/login", None, Some(login))
        .await;
    let root = root.body["access_token"].as_str().unwrap().to_owned();

    let me = app.get("/users/me", &alice).await;
    assert_eq!(
        (me.status, me.body["id"].as_str()),
        (StatusCode::OK, Some(alice_id.as_str()))
    );
    assert_eq!(me.body["is_admin"], false);
    let patch = json!({ "status": "busy", "status_message": "deep work", "display_name": "Alice L",
                        "profile": { "last_name": "Liddell" } });
    let patched = app.patch("/users/me", &alice, patch).await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["status"], "busy");
    assert_eq!(patched.body["profile"]["last_name"], "Liddell");
    let cleared = app
        .patch("/users/me", &alice, json!({ "status_message": null }))
        .await;
    assert_eq!(cleared.body["status_message"], json!(null));
    assert_eq!(
        cleared.body["display_name"], "Alice L",
        "absent fields stay"
    );

    let directory = app.get("/users?q=bo", &alice).await;
    let items = directory.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["username"], "bob");
    assert!(items[0].get("email").is_none() && items[0].get("is_admin").is_none());
    let admin_view = app.get("/users?limit=2", &root).await;
    assert_eq!(admin_view.body["items"][0]["is_admin"], false);
    assert_eq!(admin_view.body["next_cursor"], "bob");
    let next = app.get("/users?limit=2&cursor=bob", &root).await;
    assert_eq!(next.body["items"][0]["username"], "root");

    let public = app.get(&format!("/users/{bob_id}"), &alice).await;
    assert_eq!(public.status, StatusCode::OK);
    assert!(public.body.get("profile").is_none());
    let full = app.get(&format!("/users/{bob_id}"), &root).await;
    assert!(full.body.get("profile").is_some());
    let missing = app
        .get("/users/00000000-0000-0000-0000-000000000000", &alice)
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "user_not_found")
    );

    let forbidden = app
        .patch(
            &format!("/users/{bob_id}"),
            &alice,
            json!({ "display_name": "x" }),
        )
        .await;
    assert_eq!(
        (forbidden.status, forbidden.code()),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    let promoted = app
        .patch(
            &format!("/users/{bob_id}"),
            &root,
            json!({ "is_admin": true }),
        )
        .await;
    assert_eq!(promoted.body["is_admin"], true);
    assert_eq!(
        app.get(&format!("/users/{alice_id}/rooms"), &alice)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/users/{alice_id}/rooms"), &bob)
            .await
            .status,
        StatusCode::OK,
        "bob is admin now"
    );

    let change = json!({ "password": { "current": "wrong", "new": "new-password-1" } });
    assert_eq!(
        app.patch("/users/me", &alice, change).await.status,
        StatusCode::FORBIDDEN
    );
    let change = json!({ "password": { "current": "alice-password", "new": "new-password-1" } });
    assert_eq!(
        app.patch("/users/me", &alice, change).await.status,
        StatusCode::OK
    );
    assert_eq!(
        app.get("/users/me", &alice).await.status,
        StatusCode::UNAUTHORIZED,
        "the change ended every login"
    );
    let login = json!({ "username": "alice", "password": "new-password-1" });
    let login = app
        .call(Method::POST, "/auth/login", None, Some(login))
        .await;
    let alice = login.body["access_token"].as_str().unwrap().to_owned();

    assert_eq!(
        app.delete(&format!("/users/{bob_id}"), &alice).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/users/{bob_id}"), &root).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/users/me", &bob).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.delete("/users/me", &alice).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/users/me", &alice).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn rooms_membership_and_roles() {
    let app = App::new();
    let (alice, _) = app.signup("alice").await;
    let (bob, bob_id) = app.signup("bob").await;
    let (carol, carol_id) = app.signup("carol").await;
    let room = app
        .room(
            &alice,
            json!({ "name": "Lobby", "alias": "lobby", "capacity": 2, "topic": "hi" }),
        )
        .await;
    let got = app.get(&format!("/rooms/{room}"), &bob).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["kind"], "group");
    assert_eq!(got.body["has_password"], false);
    assert_eq!(got.body["member_count"], 1);
    let taken = app
        .post("/rooms", &bob, json!({ "name": "x", "alias": "LOBBY" }))
        .await;
    assert_eq!(
        (taken.status, taken.code()),
        (StatusCode::CONFLICT, "alias_taken")
    );

    let joined = app
        .post(&format!("/rooms/{room}/join"), &bob, json!({}))
        .await;
    assert_eq!(
        (joined.status, joined.body["role"].as_str()),
        (StatusCode::OK, Some("member"))
    );
    let again = app
        .call(
            Method::POST,
            &format!("/rooms/{room}/join"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "already_member")
    );
    let full = app
        .post(&format!("/rooms/{room}/join"), &carol, json!({}))
        .await;
    assert_eq!(
        (full.status, full.code()),
        (StatusCode::CONFLICT, "room_full")
    );

    let listed = app.get("/rooms?q=lob", &carol).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
    let mine = app.get("/rooms?mine=true", &bob).await;
    assert_eq!(mine.body["items"][0]["id"], room.as_str());
    // My rooms come in pages like the public ones.
    let second = app.room(&bob, json!({ "name": "second" })).await;
    let first = app.get("/rooms?mine=true&limit=1", &bob).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
    let cursor = first.body["next_cursor"].as_str().expect("a cursor");
    let next = app
        .get(&format!("/rooms?mine=true&limit=1&cursor={cursor}"), &bob)
        .await;
    assert_eq!(next.body["items"][0]["id"], second.as_str());
    let bad = app.get("/rooms?mine=true&cursor=nope", &bob).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        app.get("/rooms?mine=true", &carol).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let members = app.get(&format!("/rooms/{room}/members"), &alice).await;
    assert_eq!(members.body["items"].as_array().unwrap().len(), 2);
    let first = app
        .get(&format!("/rooms/{room}/members?limit=1"), &alice)
        .await;
    let cursor = first.body["next_cursor"].as_str().expect("a cursor");
    let second = app
        .get(
            &format!("/rooms/{room}/members?limit=1&cursor={cursor}"),
            &alice,
        )
        .await;
    assert_ne!(first.body["items"][0], second.body["items"][0]);
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
    let bad = app
        .get(&format!("/rooms/{room}/members?cursor=x"), &alice)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let patch = json!({ "capacity": 5, "topic": null });
    assert_eq!(
        app.patch(&format!("/rooms/{room}"), &bob, patch.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let patched = app.patch(&format!("/rooms/{room}"), &alice, patch).await;
    assert_eq!(
        (
            patched.body["capacity"].as_u64(),
            patched.body["topic"].clone()
        ),
        (Some(5), json!(null))
    );

    let put = app
        .put(
            &format!("/rooms/{room}/members/{carol_id}"),
            &alice,
            json!({}),
        )
        .await;
    assert_eq!(
        (put.status, put.body["role"].as_str()),
        (StatusCode::CREATED, Some("member"))
    );
    let promote = app
        .put(
            &format!("/rooms/{room}/members/{carol_id}"),
            &alice,
            json!({ "role": "admin" }),
        )
        .await;
    assert_eq!(
        (promote.status, promote.body["role"].as_str()),
        (StatusCode::OK, Some("admin"))
    );
    let by_member = app
        .put(
            &format!("/rooms/{room}/members/{carol_id}"),
            &bob,
            json!({}),
        )
        .await;
    assert_eq!(by_member.status, StatusCode::FORBIDDEN);
    // Ownership goes by its own route, only from the owner and only to a member.
    let alice_id = app.get("/users/me", &alice).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let owner = |user: &str| json!({ "user_id": user });
    assert_eq!(
        app.put(&format!("/rooms/{room}/owner"), &carol, owner(&carol_id))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let outsider = app.signup("outsider").await.1;
    let not_member = app
        .put(&format!("/rooms/{room}/owner"), &alice, owner(&outsider))
        .await;
    assert_eq!(
        (not_member.status, not_member.code()),
        (StatusCode::NOT_FOUND, "member_not_found")
    );
    let handed = app
        .put(&format!("/rooms/{room}/owner"), &alice, owner(&carol_id))
        .await;
    assert_eq!(
        (
            handed.status,
            handed.body["user_id"].as_str(),
            handed.body["role"].as_str()
        ),
        (StatusCode::OK, Some(carol_id.as_str()), Some("owner"))
    );
    let old = app
        .get(&format!("/rooms/{room}/members/{alice_id}"), &alice)
        .await;
    assert_eq!(old.body["role"], "admin");
    let back = app
        .put(&format!("/rooms/{room}/owner"), &carol, owner(&alice_id))
        .await;
    assert_eq!(back.body["role"], "owner", "{}", back.body);
    let member = app
        .get(&format!("/rooms/{room}/members/{bob_id}"), &carol)
        .await;
    assert_eq!(member.body["user_id"], bob_id.as_str());
    assert_eq!(
        app.delete(&format!("/rooms/{room}/members/{bob_id}"), &carol)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let gone = app
        .get(&format!("/rooms/{room}/members/{bob_id}"), &alice)
        .await;
    assert_eq!(
        (gone.status, gone.code()),
        (StatusCode::NOT_FOUND, "member_not_found")
    );
    assert_eq!(
        app.post(&format!("/rooms/{room}/leave"), &carol, json!({}))
            .await
            .status,
        StatusCode::NO_CONTENT
    );

    let locked = app
        .room(
            &alice,
            json!({ "name": "Vault", "password": "sesame", "visibility": "public" }),
        )
        .await;
    let wrong = app
        .post(
            &format!("/rooms/{locked}/join"),
            &bob,
            json!({ "password": "nope" }),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    let right = app
        .post(
            &format!("/rooms/{locked}/join"),
            &bob,
            json!({ "password": "sesame" }),
        )
        .await;
    assert_eq!(right.status, StatusCode::OK);
    let private = app
        .room(&alice, json!({ "name": "Secret", "visibility": "private" }))
        .await;
    assert_eq!(
        app.get(&format!("/rooms/{private}"), &bob).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.post(&format!("/rooms/{private}/join"), &bob, json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );

    assert_eq!(
        app.delete(&format!("/rooms/{room}"), &bob).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/rooms/{room}"), &alice).await.status,
        StatusCode::NO_CONTENT
    );
    let deleted = app.get(&format!("/rooms/{room}"), &alice).await;
    assert_eq!(
        (deleted.status, deleted.code()),
        (StatusCode::NOT_FOUND, "room_not_found")
    );
}

#[tokio::test]
async fn messages_history_changes_and_read_state() {
    let app = App::new();
    let (alice, alice_id) = app.signup("alice").await;
    let (bob, _) = app.signup("bob").await;
    let (eve, _) = app.signup("eve").await;
    let room = app.room(&alice, json!({ "name": "general" })).await;
    let messages = format!("/rooms/{room}/messages");

    let first = app
        .post(
            &messages,
            &alice,
            json!({ "body": "hello", "txn_id": "t1", "metadata": { "k": 1 } }),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(
        (first.body["seq"].as_u64(), first.body["sender_id"].as_str()),
        (Some(1), Some(alice_id.as_str()))
    );
    assert_eq!(first.body["txn_id"], "t1");
    let retry = app
        .post(
            &messages,
            &alice,
            json!({ "body": "hello", "txn_id": "t1", "metadata": { "k": 1 } }),
        )
        .await;
    assert_eq!(
        (retry.status, retry.body["id"].clone()),
        (StatusCode::OK, first.body["id"].clone())
    );
    let reused = app
        .post(
            &messages,
            &alice,
            json!({ "body": "other", "txn_id": "t1" }),
        )
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::CONFLICT, "txn_id_reused")
    );

    // Bob posts without joining first (a public, password-less room).
    let drive_by = app
        .post(&messages, &bob, json!({ "body": "hi, I'm bob" }))
        .await;
    assert_eq!(
        (drive_by.status, drive_by.body["seq"].as_u64()),
        (StatusCode::CREATED, Some(2))
    );
    assert!(drive_by.body.get("txn_id").is_none());
    for i in 3..=6 {
        app.post(&messages, &alice, json!({ "body": format!("m{i}") }))
            .await;
    }
    let page = app.get(&format!("{messages}?limit=2"), &bob).await;
    let seqs: Vec<u64> = page.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        (seqs, page.body["has_more"].as_bool()),
        (vec![5, 6], Some(true))
    );
    let older = app
        .get(&format!("{messages}?before=5&limit=10"), &bob)
        .await;
    assert_eq!(older.body["items"].as_array().unwrap().len(), 4);
    assert_eq!(
        older.body["items"][0]["txn_id"],
        json!(null),
        "only the sender sees its txn_id"
    );
    let after = app.get(&format!("{messages}?after=4"), &bob).await;
    assert_eq!(after.body["items"][0]["seq"], 5);
    let bad_limit = app.get(&format!("{messages}?limit=0"), &bob).await;
    assert_eq!(bad_limit.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get(&messages, &eve).await.status, StatusCode::FORBIDDEN);

    let id = first.body["id"].as_str().unwrap();
    let one = app.get(&format!("{messages}/{id}"), &bob).await;
    assert_eq!(one.body["body"], "hello");
    let cursor = app.get(&format!("/rooms/{room}/changes"), &bob).await.body["next_cursor"]
        .as_u64()
        .unwrap();
    assert_eq!(
        app.patch(&format!("{messages}/{id}"), &bob, json!({ "body": "mine" }))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    let edited = app
        .patch(
            &format!("{messages}/{id}"),
            &alice,
            json!({ "body": "hello, edited" }),
        )
        .await;
    assert_eq!(edited.body["body"], "hello, edited");
    assert!(edited.body["edited_at"].is_string());
    let bobs = drive_by.body["id"].as_str().unwrap();
    assert_eq!(
        app.delete(&format!("{messages}/{bobs}"), &alice)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let tomb = app.get(&format!("{messages}/{bobs}"), &alice).await;
    assert_eq!(
        (tomb.body["deleted"].as_bool(), tomb.body["body"].as_str()),
        (Some(true), Some(""))
    );
    let missing = app
        .get(
            &format!("{messages}/00000000-0000-0000-0000-000000000000"),
            &alice,
        )
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (StatusCode::NOT_FOUND, "message_not_found")
    );
    let changes = app
        .get(&format!("/rooms/{room}/changes?since={cursor}"), &bob)
        .await;
    let changed: Vec<(u64, bool)> = changes.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["seq"].as_u64().unwrap(), m["deleted"].as_bool().unwrap()))
        .collect();
    assert_eq!(changed, [(1, false), (2, true)]);

    let unread = app.get(&format!("/rooms/{room}/unread"), &bob).await;
    assert_eq!(
        (
            unread.body["last_read_seq"].as_u64(),
            unread.body["last_seq"].as_u64(),
            unread.body["unread"].as_u64()
        ),
        (Some(2), Some(6), Some(4))
    );
    let summary = app.get("/unread", &bob).await;
    assert_eq!(summary.body["total"], 4);
    let unseen = app.get("/messages/unread?limit=3", &bob).await;
    assert_eq!(unseen.body["items"].as_array().unwrap().len(), 3);
    let cursor = unseen.body["next_cursor"].as_str().expect("a cursor");
    let rest = app
        .get(&format!("/messages/unread?limit=3&cursor={cursor}"), &bob)
        .await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["next_cursor"], json!(null));
    let forged = app.get("/messages/unread?cursor=12.nope", &bob).await;
    assert_eq!(forged.status, StatusCode::BAD_REQUEST);
    let marked = app
        .post(&format!("/rooms/{room}/read"), &bob, json!({ "seq": 6 }))
        .await;
    assert_eq!(
        (marked.status, marked.body["unread"].as_u64()),
        (StatusCode::OK, Some(0))
    );
    let beyond = app
        .post(&format!("/rooms/{room}/read"), &bob, json!({ "seq": 99 }))
        .await;
    assert_eq!(beyond.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(app.get("/unread", &bob).await.body["total"], 0);
}

#[tokio::test]
async fn reactions_add_remove_and_show_on_messages() {
    let app = App::new();
    let (alice, _) = app.signup("alice").await;
    let (bob, _) = app.signup("bob").await;
    let (eve, _) = app.signup("eve").await;
    let room = app.room(&alice, json!({ "name": "general" })).await;
    app.join(&room, &bob).await;
    let sent = app.send(&room, &alice, "lunch?").await;
    let message = sent["id"].as_str().unwrap();
    assert_eq!(sent["reactions"], json!([]));
    // The key travels percent-encoded: 🍕.
    let pizza = format!("/rooms/{room}/messages/{message}/reactions/%F0%9F%8D%95");

    let added = app.put(&pizza, &alice, json!(null)).await;
    assert_eq!(added.status, StatusCode::OK);
    let one_mine = json!([{ "key": "🍕", "count": 1, "me": true }]);
    assert_eq!(added.body["reactions"], one_mine);
    let again = app.put(&pizza, &alice, json!(null)).await;
    assert_eq!(
        (again.status, &again.body["reactions"]),
        (StatusCode::OK, &one_mine)
    );
    let bobs = app.put(&pizza, &bob, json!(null)).await;
    assert_eq!(bobs.body["reactions"][0]["count"], 2);
    let history = app.get(&format!("/rooms/{room}/messages"), &alice).await;
    assert_eq!(
        history.body["items"][0]["reactions"],
        json!([{ "key": "🍕", "count": 2, "me": true }])
    );

    let removed = app.delete(&pizza, &alice).await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(
        removed.body["reactions"],
        json!([{ "key": "🍕", "count": 1, "me": false }])
    );
    assert_eq!(app.delete(&pizza, &alice).await.status, StatusCode::OK);

    assert_eq!(
        app.put(&pizza, &eve, json!(null)).await.status,
        StatusCode::FORBIDDEN
    );
    let long = format!(
        "/rooms/{room}/messages/{message}/reactions/{}",
        "x".repeat(65)
    );
    let refused = app.put(&long, &alice, json!(null)).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let message = refused.body["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("invalid key"), "{message}");
    let unknown =
        format!("/rooms/{room}/messages/00000000-0000-0000-0000-000000000000/reactions/x");
    let missing = app.put(&unknown, &alice, json!(null)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn direct_messages() {
    let app = App::new();
    let (alice, alice_id) = app.signup("alice").await;
    let (bob, bob_id) = app.signup("bob").await;
    let sent = app
        .post(
            &format!("/direct/{bob_id}/messages"),
            &alice,
            json!({ "body": "psst" }),
        )
        .await;
    assert_eq!(sent.status, StatusCode::CREATED);
    let reply = app
        .post(
            &format!("/direct/{alice_id}/messages"),
            &bob,
            json!({ "body": "yes?" }),
        )
        .await;
    assert_eq!(reply.body["room_id"], sent.body["room_id"]);
    let to_self = app
        .post(
            &format!("/direct/{alice_id}/messages"),
            &alice,
            json!({ "body": "me" }),
        )
        .await;
    assert_eq!(to_self.status, StatusCode::UNPROCESSABLE_ENTITY);
    let to_nobody = app
        .post(
            "/direct/00000000-0000-0000-0000-000000000000/messages",
            &alice,
            json!({ "body": "hi" }),
        )
        .await;
    assert_eq!(
        (to_nobody.status, to_nobody.code()),
        (StatusCode::NOT_FOUND, "user_not_found")
    );

    let conversations = app.get("/direct", &alice).await;
    let conversation = &conversations.body["items"][0];
    assert_eq!(conversation["other"]["username"], "bob");
    assert_eq!(conversation["last_message"]["body"], "yes?");
    assert_eq!(
        (
            conversation["unread"].as_u64(),
            conversation["room"]["kind"].as_str()
        ),
        (Some(1), Some("direct"))
    );
    let history = app.get(&format!("/direct/{bob_id}/messages"), &alice).await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 2);
    let received = app.get("/messages/received", &alice).await;
    assert_eq!(received.body["items"][0]["body"], "yes?");
    assert_eq!(received.body["items"].as_array().unwrap().len(), 1);
    let room = sent.body["room_id"].as_str().unwrap();
    assert_eq!(
        app.post(&format!("/rooms/{room}/leave"), &alice, json!({}))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let mut limits = open_limits();
    limits.auth_attempts_per_ip = 3;
    limits.sends_per_second_per_user = 1;
    limits.send_burst = 2;
    let app = App::with_limits(limits);
    let (token, _) = app.signup("alice").await; // register + login: 2 attempts
    let wrong = json!({ "username": "alice", "password": "wrong-password" });
    let third = app
        .call(Method::POST, "/auth/login", None, Some(wrong.clone()))
        .await;
    assert_eq!(third.status, StatusCode::UNAUTHORIZED);
    let fourth = app
        .call(Method::POST, "/auth/login", None, Some(wrong))
        .await;
    assert_eq!(
        (fourth.status, fourth.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let retry_after: u64 = fourth.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after));

    let room = app.room(&token, json!({ "name": "r" })).await;
    let path = format!("/rooms/{room}/messages");
    let statuses = [
        app.post(&path, &token, json!({ "body": "1" })).await.status,
        app.post(&path, &token, json!({ "body": "2" })).await.status,
        app.post(&path, &token, json!({ "body": "3" })).await.status,
    ];
    assert_eq!(
        statuses,
        [
            StatusCode::CREATED,
            StatusCode::CREATED,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn openapi_health_and_metrics() {
    let app = App::new();
    let (token, _) = app.signup("alice").await;
    let spec = app
        .raw(
            Request::get("/api/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(spec.status, StatusCode::OK);
    let paths = spec.body["paths"].as_object().unwrap();
    for path in [
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/logout",
        "/auth/ws-ticket",
        "/users",
        "/users/me",
        "/users/{id}",
        "/users/{id}/rooms",
        "/rooms",
        "/rooms/{id}",
        "/rooms/{id}/join",
        "/rooms/{id}/leave",
        "/rooms/{id}/members",
        "/rooms/{id}/members/{user_id}",
        "/rooms/{id}/messages",
        "/rooms/{id}/changes",
        "/rooms/{id}/messages/{message_id}",
        "/rooms/{id}/read",
        "/rooms/{id}/unread",
        "/direct",
        "/direct/{user_id}/messages",
        "/unread",
        "/messages/unread",
        "/messages/received",
        "/events",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from the OpenAPI document"
        );
    }
    let docs = app
        .raw(Request::get("/api/v1/docs/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(docs.status, StatusCode::OK);
    let health = app
        .raw(Request::get("/healthz").body(Body::empty()).unwrap())
        .await;
    assert_eq!(health.status, StatusCode::OK);

    let room = app.room(&token, json!({ "name": "r" })).await;
    app.send(&room, &token, "x").await;
    let response = app
        .router
        .clone()
        .oneshot_text(Request::get("/metrics").body(Body::empty()).unwrap())
        .await;
    assert!(
        response.contains(
            "chat_http_requests_total{method=\"POST\",route=\"/api/v1/rooms\",status=\"201\"} 1"
        ),
        "{response}"
    );
    assert!(
        response.contains("chat_messages_sent_total 1"),
        "{response}"
    );
    assert!(response.contains("chat_websockets 0"), "{response}");
}

trait OneshotText {
    async fn oneshot_text(self, request: Request<Body>) -> String;
}

impl OneshotText for axum::Router {
    async fn oneshot_text(self, request: Request<Body>) -> String {
        use tower::ServiceExt;
        let response = self.oneshot(request).await.unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }
}

#[tokio::test]
async fn threads_and_mentions_over_rest() {
    let app = App::new();
    let (alice, alice_id) = app.signup("alice").await;
    let (bob, bob_id) = app.signup("bob").await;
    let (_, eve_id) = app.signup("eve").await;
    let room = app.room(&alice, json!({ "name": "general" })).await;
    app.join(&room, &bob).await;
    let messages = format!("/rooms/{room}/messages");
    let root = app
        .post(&messages, &alice, json!({ "body": "plans?" }))
        .await;
    let root_id = root.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (
            &root.body["thread_root"],
            &root.body["thread"],
            &root.body["mentions"]
        ),
        (&json!(null), &json!(null), &json!([]))
    );
    let reply = app
        .post(
            &messages,
            &bob,
            json!({ "body": "friday", "thread_root": root_id, "mentions": [alice_id, eve_id] }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    assert_eq!(reply.body["thread_root"], root_id.as_str());
    assert_eq!(
        reply.body["mentions"],
        json!([alice_id]),
        "eve is no member"
    );
    let reply_id = reply.body["id"].as_str().unwrap().to_owned();
    let reply_seq = reply.body["seq"].as_u64().unwrap();

    // The root carries the summary; the thread pages like history.
    let history = app.get(&messages, &alice).await;
    let summary = &history.body["items"][0]["thread"];
    assert_eq!(
        (&summary["reply_count"], &summary["participants"]),
        (&json!(1), &json!([bob_id]))
    );
    let thread = app
        .get(&format!("{messages}?thread_root={root_id}"), &alice)
        .await;
    let ids: Vec<&str> = thread.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [reply_id.as_str()]);
    let threads = app.get(&format!("/rooms/{room}/threads"), &alice).await;
    assert_eq!(threads.status, StatusCode::OK);
    assert_eq!(threads.body["items"][0]["root"]["id"], root_id.as_str());
    assert_eq!(threads.body["items"][0]["unread"], 1);

    // Alice's counts: one unread reply in a thread she started, one mention.
    let unread = app.get("/unread", &alice).await;
    assert_eq!(
        (&unread.body["mentions"], &unread.body["threads"]),
        (&json!(1), &json!(1))
    );
    let in_room = app.get(&format!("/rooms/{room}/unread"), &alice).await;
    assert_eq!(
        (&in_room.body["mentions"], &in_room.body["threads"]),
        (&json!(1), &json!(1))
    );
    let mentions = app.get("/messages/mentions", &alice).await;
    assert_eq!(mentions.body["items"][0]["id"], reply_id.as_str());
    let marked = app
        .post(
            &format!("/rooms/{room}/threads/{root_id}/read"),
            &alice,
            json!({ "seq": reply_seq }),
        )
        .await;
    assert_eq!(
        (marked.status, &marked.body["unread"]),
        (StatusCode::OK, &json!(0))
    );
    let read = app
        .post(
            &format!("/rooms/{room}/read"),
            &alice,
            json!({ "seq": reply_seq }),
        )
        .await;
    assert_eq!(
        (&read.body["mentions"], &read.body["threads"]),
        (&json!(0), &json!(0))
    );

    // The rules: a reply is no thread root (422); the whole room is for managers (403).
    let nested = app
        .post(
            &messages,
            &alice,
            json!({ "body": "x", "thread_root": reply_id }),
        )
        .await;
    assert_eq!(nested.status, StatusCode::UNPROCESSABLE_ENTITY);
    let everyone = app
        .post(
            &messages,
            &bob,
            json!({ "body": "all", "mentions_room": true }),
        )
        .await;
    assert_eq!(everyone.status, StatusCode::FORBIDDEN);
    let not_a_root = app
        .post(
            &format!("/rooms/{room}/threads/{reply_id}/read"),
            &alice,
            json!({ "seq": 1 }),
        )
        .await;
    assert_eq!(not_a_root.status, StatusCode::NOT_FOUND);
    let bad_cursor = app.get("/messages/mentions?cursor=nope", &alice).await;
    assert_eq!(bad_cursor.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn search_finds_messages_of_my_rooms() {
    let app = App::new();
    let (alice, _) = app.signup("alice").await;
    let (bob, _) = app.signup("bob").await;
    let room = app.room(&alice, json!({ "name": "general" })).await;
    let other = app
        .room(&bob, json!({ "name": "bob's", "visibility": "private" }))
        .await;
    let messages = format!("/rooms/{room}/messages");
    let sent = app
        .post(
            &messages,
            &alice,
            json!({ "body": "Rendez-vous au Café 東京タワー" }),
        )
        .await;
    let id = sent.body["id"].as_str().unwrap().to_owned();
    app.post(
        &format!("/rooms/{other}/messages"),
        &bob,
        json!({ "body": "cafe secret" }),
    )
    .await;

    for q in ["cafe", "CAFÉ%20rendez", "%E3%82%BF%E3%83%AF%E3%83%BC"] {
        let found = app.get(&format!("/search?q={q}"), &alice).await;
        assert_eq!(found.status, StatusCode::OK, "{q}: {}", found.body);
        assert_eq!(found.body["items"].as_array().unwrap().len(), 1, "{q}");
        assert_eq!(found.body["items"][0]["message"]["id"], id.as_str());
        assert_eq!(found.body["items"][0]["room_id"], room.as_str());
    }
    let in_room = app
        .get(&format!("/search?q=cafe&room_id={room}"), &alice)
        .await;
    assert_eq!(in_room.body["items"].as_array().unwrap().len(), 1);
    let not_mine = app
        .get(&format!("/search?q=cafe&room_id={other}"), &alice)
        .await;
    assert_eq!(not_mine.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/search?q=%21%21", &alice).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/search", &alice).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.get("/search?q=cafe&cursor=x", &alice).await.status,
        StatusCode::BAD_REQUEST
    );
}
