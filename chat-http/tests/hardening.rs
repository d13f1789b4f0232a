//! Hardening through `oneshot`: brute force, hostile input, what bodies may set, what
//! responses may show, and who may do what on every route.
#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

mod common;

use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use common::{App, open_config, open_limits};
use serde_json::{Value, json};

fn login_body(name: &str, password: &str) -> Value {
    json!({ "username": name, "password": password })
}

#[tokio::test]
async fn failed_logins_lock_an_account_for_a_window_then_the_right_password_works() {
    let config = open_config()
        .with_failed_logins_allowed(3)
        .with_failed_login_window(Duration::from_millis(800));
    let app = App::with(open_limits(), config);
    app.signup("alice").await;
    for _ in 0..3 {
        let wrong = app
            .call(
                Method::POST,
                "/auth/login",
                None,
                Some(login_body("alice", "guess-guess")),
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    }
    let locked = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(login_body("ALICE", "alice-password")),
        )
        .await;
    assert_eq!(
        (locked.status, locked.code()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert!(locked.headers.contains_key(header::RETRY_AFTER));
    // Unknown accounts are limited the same way, so the limit reveals nothing.
    for _ in 0..3 {
        app.call(
            Method::POST,
            "/auth/login",
            None,
            Some(login_body("nobody", "guess-guess")),
        )
        .await;
    }
    let unknown = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(login_body("nobody", "x")),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::TOO_MANY_REQUESTS);

    tokio::time::sleep(Duration::from_millis(900)).await;
    let after = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(login_body("alice", "alice-password")),
        )
        .await;
    assert_eq!(after.status, StatusCode::OK, "{}", after.body);
}

#[tokio::test]
async fn attempts_per_ip_are_limited_then_refill() {
    let mut limits = open_limits();
    limits.auth_attempts_per_ip = 2;
    limits.auth_window = Duration::from_millis(600);
    let app = App::with_limits(limits);
    let register = json!({ "username": "alice", "password": "alice-password" });
    assert_eq!(
        app.call(Method::POST, "/auth/register", None, Some(register))
            .await
            .status,
        StatusCode::CREATED
    );
    let wrong = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(login_body("alice", "nope-nope")),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let limited = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(login_body("alice", "alice-password")),
        )
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ok = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(login_body("alice", "alice-password")),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
}

/// Sends raw bytes as a JSON body.
async fn raw_json(
    app: &App,
    method: Method,
    path: &str,
    token: &str,
    body: Vec<u8>,
) -> common::Reply {
    let request = Request::builder()
        .method(method)
        .uri(format!("/api/v1{path}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    app.raw(request).await
}

#[tokio::test]
async fn hostile_input_gets_a_4xx_json_error_and_changes_nothing() {
    let app = App::new();
    let (token, _) = app.signup("alice").await;
    let room = app.room(&token, json!({ "name": "general" })).await;
    let messages = format!("/rooms/{room}/messages");
    let nested = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "deeply nested",
            format!("{{\"body\": {nested}}}").into_bytes(),
        ),
        ("invalid UTF-8", b"{\"body\": \"\xff\xfe\"}".to_vec()),
        ("lone surrogate", br#"{"body": "\ud800"}"#.to_vec()),
        (
            "enormous number",
            br#"{"body": "x", "reply_to": 1e400}"#.to_vec(),
        ),
        ("wrong type", br#"{"body": 42}"#.to_vec()),
        ("missing field", br#"{"txn_id": "t"}"#.to_vec()),
        ("not JSON", b"body=hello".to_vec()),
        ("empty", Vec::new()),
        ("a lone NUL", b"\0".to_vec()),
        (
            "sender set by the client",
            br#"{"body": "x", "sender_id": "00000000-0000-0000-0000-000000000001"}"#.to_vec(),
        ),
        (
            "seq set by the client",
            br#"{"body": "x", "seq": 99}"#.to_vec(),
        ),
        (
            "time set by the client",
            br#"{"body": "x", "created_at": "2000-01-01T00:00:00Z"}"#.to_vec(),
        ),
    ];
    for (what, body) in bodies {
        let reply = raw_json(&app, Method::POST, &messages, &token, body).await;
        assert!(reply.status.is_client_error(), "{what}: {}", reply.status);
        assert!(
            reply.body["error"]["code"].is_string(),
            "{what}: not a JSON error: {}",
            reply.body
        );
    }
    let role = raw_json(
        &app,
        Method::POST,
        &format!("/rooms/{room}/join"),
        &token,
        br#"{"role": "owner"}"#.to_vec(),
    )
    .await;
    assert_eq!(role.status, StatusCode::UNPROCESSABLE_ENTITY);
    let promote = raw_json(
        &app,
        Method::POST,
        "/auth/register",
        &token,
        br#"{"username": "eve", "password": "eve-password", "is_admin": true}"#.to_vec(),
    )
    .await;
    assert_eq!(promote.status, StatusCode::UNPROCESSABLE_ENTITY);

    for query in [
        "limit=-1",
        "limit=99999999999",
        "limit=0",
        "before=-5",
        "after=abc",
        "limit=1e3",
    ] {
        let reply = app.get(&format!("{messages}?{query}"), &token).await;
        assert!(reply.status.is_client_error(), "{query}: {}", reply.status);
    }
    for path in [
        "/rooms/123",
        "/rooms/%00",
        "/users/not-a-uuid",
        "/direct/zzz/messages",
    ] {
        let reply = app.get(path, &token).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
    }
    let history = app.get(&messages, &token).await;
    assert_eq!(
        history.body["items"].as_array().unwrap().len(),
        0,
        "nothing was stored"
    );
}

#[tokio::test]
async fn names_refuse_invisible_and_bidi_characters_and_text_round_trips() {
    let app = App::new();
    for name in [
        "al\u{200b}ice",
        "\u{202e}ecila",
        "ali\u{0301}ce",
        "ＡＬＩＣＥ",
        "alice\u{0}",
        "bob\u{feff}",
    ] {
        let body = json!({ "username": name, "password": "long enough" });
        let reply = app
            .call(Method::POST, "/auth/register", None, Some(body))
            .await;
        assert_eq!(reply.status, StatusCode::UNPROCESSABLE_ENTITY, "{name:?}");
    }
    let upper = json!({ "username": "ALICE", "password": "long enough" });
    let folded = app
        .call(Method::POST, "/auth/register", None, Some(upper))
        .await;
    assert_eq!(folded.body["username"], "alice");

    let (token, _) = app.signup("bob").await;
    let room = app.room(&token, json!({ "name": "عربي 🌍" })).await;
    let text = "emoji 👩‍👩‍👧‍👦 RTL שלום مرحبا combining e\u{301} zero\u{200d}width NUL\u{0}ok tab\t\r\n";
    let sent = app.send(&room, &token, text).await;
    let id = sent["id"].as_str().unwrap();
    let read = app
        .get(&format!("/rooms/{room}/messages/{id}"), &token)
        .await;
    assert_eq!(
        read.body["body"].as_str().unwrap().as_bytes(),
        text.as_bytes()
    );
    assert_eq!(
        app.get(&format!("/rooms/{room}"), &token).await.body["name"],
        "عربي 🌍"
    );
}

#[tokio::test]
async fn responses_never_carry_password_or_token_hashes() {
    let app = App::new();
    let (token, user) = app.signup("alice").await;
    let room = app
        .room(
            &token,
            json!({ "name": "locked", "password": "room-secret" }),
        )
        .await;
    let mut seen = Vec::new();
    for path in [
        "/users/me".to_owned(),
        format!("/users/{user}"),
        "/users".to_owned(),
        format!("/rooms/{room}"),
        "/rooms?mine=true".to_owned(),
        format!("/rooms/{room}/members"),
    ] {
        seen.push(app.get(&path, &token).await.body.to_string());
    }
    for body in seen {
        for secret in [
            "$argon2",
            "password_hash",
            "room-secret",
            "alice-password",
            "token_hash",
        ] {
            assert!(!body.contains(secret), "{secret} leaked in {body}");
        }
    }
}

/// Who acts in the matrix test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    Outsider,
    Member,
    RoomAdmin,
    Owner,
    SiteAdmin,
}

#[tokio::test]
async fn every_route_answers_each_kind_of_user_as_expected() {
    use Who::*;
    let app = App::new();
    let (owner, _) = app.signup("owner").await;
    let (admin, admin_id) = app.signup("roomadmin").await;
    let (member, member_id) = app.signup("member").await;
    let (outsider, _) = app.signup("outsider").await;
    let (_, newcomer_id) = app.signup("newcomer").await;
    app.chat
        .create_admin(chat_core::NewUser::named("root"), Some("root-password"))
        .await
        .unwrap();
    let root = app
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(login_body("root", "root-password")),
        )
        .await;
    let root = root.body["access_token"].as_str().unwrap().to_owned();
    let token = |who: Who| -> Option<&str> {
        match who {
            Anonymous => None,
            Outsider => Some(&outsider),
            Member => Some(&member),
            RoomAdmin => Some(&admin),
            Owner => Some(&owner),
            SiteAdmin => Some(&root),
        }
    };

    // A private room with every role in it, a message of the member's, and a direct
    // conversation between owner and member.
    let room = app
        .room(&owner, json!({ "name": "secret", "visibility": "private" }))
        .await;
    app.put(
        &format!("/rooms/{room}/members/{admin_id}"),
        &owner,
        json!({ "role": "admin" }),
    )
    .await;
    app.put(
        &format!("/rooms/{room}/members/{member_id}"),
        &owner,
        json!({}),
    )
    .await;
    let message = app.send(&room, &member, "hi").await;
    let message = message["id"].as_str().unwrap().to_owned();
    let owner_id = app.get("/users/me", &owner).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let direct = app
        .post(
            &format!("/direct/{member_id}/messages"),
            &owner,
            json!({ "body": "psst" }),
        )
        .await;
    let direct_room = direct.body["room_id"].as_str().unwrap().to_owned();

    const OK: u16 = 200;
    const NO: u16 = 403;
    const ANON: u16 = 401;
    // (method, path, body, expected status per who: anonymous, outsider, member, room admin,
    // owner, site admin). Reads and harmless writes only; the site admin has no power over a
    // room it is not in.
    let cases: Vec<(Method, String, Option<Value>, [u16; 6])> = vec![
        (
            Method::GET,
            format!("/rooms/{room}"),
            None,
            [ANON, NO, OK, OK, OK, NO],
        ),
        (
            Method::GET,
            format!("/rooms/{room}/members"),
            None,
            [ANON, NO, OK, OK, OK, NO],
        ),
        (
            Method::GET,
            format!("/rooms/{room}/members/{member_id}"),
            None,
            [ANON, NO, OK, OK, OK, NO],
        ),
        (
            Method::GET,
            format!("/rooms/{room}/messages"),
            None,
            [ANON, NO, OK, OK, OK, NO],
        ),
        (
            Method::GET,
            format!("/rooms/{room}/changes"),
            None,
            [ANON, NO, OK, OK, OK, NO],
        ),
        (
            Method::GET,
            format!("/rooms/{room}/messages/{message}"),
            None,
            [ANON, NO, OK, OK, OK, NO],
        ),
        (
            Method::GET,
            format!("/rooms/{room}/unread"),
            None,
            [ANON, NO, OK, OK, OK, NO],
        ),
        (
            Method::POST,
            format!("/rooms/{room}/read"),
            Some(json!({ "seq": 0 })),
            [ANON, NO, OK, OK, OK, NO],
        ),
        (
            Method::POST,
            format!("/rooms/{room}/join"),
            Some(json!({})),
            [ANON, NO, NO, NO, NO, NO],
        ),
        (
            Method::PATCH,
            format!("/rooms/{room}"),
            Some(json!({ "topic": "t" })),
            [ANON, NO, NO, OK, OK, NO],
        ),
        (
            Method::PATCH,
            format!("/rooms/{room}/messages/{message}"),
            Some(json!({ "body": "edit" })),
            [ANON, NO, OK, NO, NO, NO],
        ),
        (
            Method::PUT,
            format!("/rooms/{room}/members/{newcomer_id}"),
            Some(json!({ "role": "admin" })),
            [ANON, NO, NO, NO, 201, NO],
        ),
        (
            Method::GET,
            format!("/direct/{member_id}/messages"),
            None,
            [ANON, OK, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            format!("/rooms/{direct_room}/messages"),
            None,
            [ANON, NO, OK, NO, OK, NO],
        ),
        (
            Method::GET,
            format!("/users/{member_id}/rooms"),
            None,
            [ANON, NO, OK, NO, NO, OK],
        ),
        (
            Method::PATCH,
            format!("/users/{member_id}"),
            Some(json!({ "status_message": "x" })),
            [ANON, NO, OK, NO, NO, OK],
        ),
        (
            Method::GET,
            format!("/users/{owner_id}"),
            None,
            [ANON, OK, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            "/unread".to_owned(),
            None,
            [ANON, OK, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            "/direct".to_owned(),
            None,
            [ANON, OK, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            "/messages/unread".to_owned(),
            None,
            [ANON, OK, OK, OK, OK, OK],
        ),
        (
            Method::GET,
            "/messages/received".to_owned(),
            None,
            [ANON, OK, OK, OK, OK, OK],
        ),
        (
            Method::POST,
            "/auth/ws-ticket".to_owned(),
            Some(json!({})),
            [ANON, OK, OK, OK, OK, OK],
        ),
    ];
    for (method, path, body, expected) in cases {
        for (who, status) in [Anonymous, Outsider, Member, RoomAdmin, Owner, SiteAdmin]
            .into_iter()
            .zip(expected)
        {
            let reply = app
                .call(method.clone(), &path, token(who), body.clone())
                .await;
            assert_eq!(
                reply.status.as_u16(),
                status,
                "{method} {path} as {who:?}: {}",
                reply.body
            );
            if status == NO {
                // Refusals do not say whether the room or message exists beyond the id asked.
                assert!(reply.body["message"].is_null());
                assert!(reply.body.get("items").is_none());
            }
        }
    }
    // The outsider learns nothing of the direct conversation from the direct route: its
    // "conversation with the member" is empty, not the owner's.
    let theirs = app
        .get(&format!("/direct/{member_id}/messages"), &outsider)
        .await;
    assert_eq!(theirs.body["items"].as_array().unwrap().len(), 0);
    // Destructive routes, each by who may and who may not.
    assert_eq!(
        app.delete(&format!("/rooms/{room}/members/{admin_id}"), &member)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/rooms/{room}/messages/{message}"), &outsider)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/rooms/{room}/messages/{message}"), &admin)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("/rooms/{room}"), &admin).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/rooms/{room}"), &root).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/users/{owner_id}"), &member)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.delete(&format!("/rooms/{room}"), &owner).await.status,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn made_up_http_methods_do_not_grow_the_metrics() {
    let app = App::new();
    for i in 0..200 {
        let method =
            Method::from_bytes(format!("MADEUP{i}{}", "X".repeat(500)).as_bytes()).unwrap();
        let request = Request::builder()
            .method(method)
            .uri("/api/v1/users/me")
            .body(Body::empty())
            .unwrap();
        let reply = app.raw(request).await;
        assert!(reply.status.is_client_error());
    }
    let request = Request::builder()
        .uri("/metrics")
        .body(Body::empty())
        .unwrap();
    let response = tower::ServiceExt::oneshot(app.router.clone(), request)
        .await
        .unwrap();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(!text.contains("MADEUP"), "a made-up method became a label");
    assert!(text.contains(r#"method="other""#));
    assert!(text.len() < 64 * 1024, "/metrics is {} bytes", text.len());
}

#[tokio::test]
async fn a_refused_profile_change_changes_no_password() {
    let app = App::new();
    let (token, _) = app.signup("alice").await;
    let login = |password: &'static str| {
        let app = &app;
        async move {
            app.call(
                Method::POST,
                "/auth/login",
                None,
                Some(login_body("alice", password)),
            )
            .await
            .status
        }
    };
    let change = json!({ "current": "alice-password", "new": "a brand new password" });
    for (refused, status) in [
        (
            json!({ "password": change, "email": "not an email" }),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            json!({ "password": change, "is_admin": true }),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let reply = app
            .call(Method::PATCH, "/users/me", Some(&token), Some(refused))
            .await;
        assert_eq!(reply.status, status, "{}", reply.body);
        // Nothing changed: the old password works, the new one does not, the login stands.
        assert_eq!(login("alice-password").await, StatusCode::OK);
        assert_eq!(
            login("a brand new password").await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(app.get("/users/me", &token).await.status, StatusCode::OK);
    }
    // Both at once, valid: both apply.
    let both = json!({ "password": change, "display_name": "Alice A." });
    let reply = app
        .call(Method::PATCH, "/users/me", Some(&token), Some(both))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(reply.body["display_name"], "Alice A.");
    assert_eq!(login("a brand new password").await, StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_method_gets_a_json_405() {
    let app = App::new();
    let reply = app.call(Method::DELETE, "/auth/login", None, None).await;
    assert_eq!(
        (reply.status, reply.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}
