//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{accounts, messages, rooms, search, threads};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(title = "chat-engine", description = "Users, rooms, messages, read state and live events."),
    servers((url = "/api/v1")),
    modifiers(&BearerAuth),
    paths(
        accounts::register, accounts::login, accounts::refresh, accounts::logout,
        accounts::ws_ticket, accounts::me, accounts::patch_me, accounts::delete_me,
        accounts::list_users, accounts::get_user, accounts::patch_user, accounts::delete_user,
        accounts::user_rooms,
        rooms::create_room, rooms::list_rooms, rooms::get_room, rooms::patch_room,
        rooms::delete_room, rooms::join, rooms::leave, rooms::members, rooms::put_member,
        rooms::put_owner,
        rooms::get_member, rooms::remove_member, rooms::mark_read, rooms::unread,
        messages::send, messages::list, messages::changes, messages::get, messages::edit,
        messages::delete, messages::add_reaction, messages::remove_reaction,
        messages::conversations, messages::send_direct,
        messages::direct_history, messages::unread_summary, messages::unread_messages,
        messages::received,
        threads::threads, threads::mark_thread_read, threads::mentions, search::search,
        crate::ws::events,
    )
)]
pub struct ApiDoc;
