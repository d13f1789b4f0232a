//! The `/api/v1` routes. Handlers parse, call `Chat` and map the result; no domain rule lives
//! here.

pub(crate) mod accounts;
pub(crate) mod messages;
pub(crate) mod rooms;
pub(crate) mod search;
pub(crate) mod threads;

use axum::Router;
use axum::routing::{get, post, put};

use crate::AppState;

/// Every `/api/v1` route.
pub(crate) fn api() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(accounts::register))
        .route("/auth/login", post(accounts::login))
        .route("/auth/refresh", post(accounts::refresh))
        .route("/auth/logout", post(accounts::logout))
        .route("/auth/ws-ticket", post(accounts::ws_ticket))
        .route(
            "/users/me",
            get(accounts::me)
                .patch(accounts::patch_me)
                .delete(accounts::delete_me),
        )
        .route("/users", get(accounts::list_users))
        .route(
            "/users/{id}",
            get(accounts::get_user)
                .patch(accounts::patch_user)
                .delete(accounts::delete_user),
        )
        .route("/users/{id}/rooms", get(accounts::user_rooms))
        .route("/rooms", post(rooms::create_room).get(rooms::list_rooms))
        .route(
            "/rooms/{id}",
            get(rooms::get_room)
                .patch(rooms::patch_room)
                .delete(rooms::delete_room),
        )
        .route("/rooms/{id}/join", post(rooms::join))
        .route("/rooms/{id}/leave", post(rooms::leave))
        .route("/rooms/{id}/members", get(rooms::members))
        .route("/rooms/{id}/owner", put(rooms::put_owner))
        .route(
            "/rooms/{id}/members/{user_id}",
            put(rooms::put_member)
                .get(rooms::get_member)
                .delete(rooms::remove_member),
        )
        .route(
            "/rooms/{id}/messages",
            post(messages::send).get(messages::list),
        )
        .route("/rooms/{id}/changes", get(messages::changes))
        .route(
            "/rooms/{id}/messages/{message_id}",
            get(messages::get)
                .patch(messages::edit)
                .delete(messages::delete),
        )
        .route(
            "/rooms/{id}/messages/{message_id}/reactions/{key}",
            put(messages::add_reaction).delete(messages::remove_reaction),
        )
        .route("/rooms/{id}/threads", get(threads::threads))
        .route(
            "/rooms/{id}/threads/{root_id}/read",
            post(threads::mark_thread_read),
        )
        .route("/rooms/{id}/read", post(rooms::mark_read))
        .route("/rooms/{id}/unread", get(rooms::unread))
        .route("/direct", get(messages::conversations))
        .route(
            "/direct/{user_id}/messages",
            post(messages::send_direct).get(messages::direct_history),
        )
        .route("/unread", get(messages::unread_summary))
        .route("/messages/unread", get(messages::unread_messages))
        .route("/messages/received", get(messages::received))
        .route("/messages/mentions", get(threads::mentions))
        .route("/search", get(search::search))
        .route("/events", get(crate::ws::events))
}
