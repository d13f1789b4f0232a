//! `/auth/*` and `/users/*`.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use chat_core::auth::{Authenticated, LoginName, TokenPair};
use chat_core::{NewUser, PasswordChange, UserId, UserUpdate, UserView};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Actor, bearer};
use crate::dto::{
    ListPage, ListQuery, LoginIn, RefreshIn, RegisterIn, RoomOut, TicketOut, TokensOut, UserOut,
    UserPatch, cursor, user_id,
};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ClientIp, Json, Path, Query};

type Out<T> = ApiResult<axum::Json<T>>;

fn tokens(pair: TokenPair, now: chrono::DateTime<chrono::Utc>, user: Option<UserOut>) -> TokensOut {
    TokensOut {
        access_token: pair.access_token,
        refresh_token: pair.refresh_token,
        token_type: "Bearer".into(),
        expires_in: (pair.access_expires_at - now).num_seconds().max(0),
        user,
    }
}

impl AppState {
    /// Which of `users` are online, as every server on the store sees it.
    pub(crate) async fn online(
        &self,
        viewer: UserId,
        users: &[UserId],
    ) -> ApiResult<HashSet<UserId>> {
        Ok(self.chat.online(viewer, users).await?)
    }

    /// A user's full record, as `viewer` (who may see it) gets it.
    pub(crate) async fn user_out(
        &self,
        viewer: UserId,
        user: chat_core::User,
    ) -> ApiResult<UserOut> {
        let online = self.online(viewer, &[user.id]).await?.contains(&user.id);
        Ok(UserOut::full(user, online))
    }
}

/// Register with a password.
#[utoipa::path(post, path = "/auth/register", tag = "auth", request_body = RegisterIn,
    responses((status = 201, body = UserOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<RegisterIn>,
) -> ApiResult<(StatusCode, axum::Json<UserOut>)> {
    state.rate.auth_attempt(ip)?;
    let new = NewUser {
        username: body.username,
        email: body.email,
        display_name: body.display_name,
        profile: body.profile.unwrap_or_default().into(),
    };
    let user = state.chat.register(new, &body.password).await?;
    let user = state.user_out(user.id, user).await?;
    Ok((StatusCode::CREATED, axum::Json(user)))
}

/// Log in with a username or email and a password.
#[utoipa::path(post, path = "/auth/login", tag = "auth", request_body = LoginIn,
    responses((status = 200, body = TokensOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(body): Json<LoginIn>,
) -> Out<TokensOut> {
    state.rate.auth_attempt(ip)?;
    let name = match (body.username, body.email) {
        (Some(username), None) => LoginName::Username(username),
        (None, Some(email)) => LoginName::Email(email),
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "give either username or email",
            ));
        }
    };
    // The core counts failed logins per account in the store (429 once locked).
    let login = state.chat.login(name, &body.password).await?;
    let now = chrono::Utc::now();
    let user = state.user_out(login.user.id, login.user).await?;
    Ok(axum::Json(tokens(login.tokens, now, Some(user))))
}

/// Exchange a refresh token for a new pair; the old one stops working.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshIn,
    responses((status = 200, body = TokensOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn refresh(
    State(state): State<AppState>,
    Json(body): Json<RefreshIn>,
) -> Out<TokensOut> {
    let pair = state.chat.refresh(&body.refresh_token).await?;
    Ok(axum::Json(tokens(pair, chrono::Utc::now(), None)))
}

/// Revoke this login at once and close its WebSockets, on every server.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    actor: Actor,
    request: axum::http::request::Parts,
) -> ApiResult<StatusCode> {
    let token = bearer(&request).ok_or_else(ApiError::unauthenticated)?;
    let _ = actor;
    state.chat.logout(token).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A single-use ticket for opening `/events` from a browser, bound to this login: it works
/// once, on any server, within its lifetime, and not after the login ends.
#[utoipa::path(post, path = "/auth/ws-ticket", tag = "auth",
    responses((status = 200, body = TicketOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn ws_ticket(State(state): State<AppState>, actor: Actor) -> Out<TicketOut> {
    // A host that authenticates requests itself has no login to bind a ticket to; its
    // browsers authenticate the WebSocket upgrade the same way as every other request.
    let session_id = actor
        .session_id
        .ok_or(chat_core::Error::Forbidden(chat_core::Denied::NotALogin))?;
    let login = Authenticated {
        user_id: actor.user_id,
        session_id,
    };
    let ticket = state.chat.issue_ticket(login).await?;
    let now = chrono::Utc::now();
    Ok(axum::Json(TicketOut {
        ticket: ticket.ticket,
        expires_in: (ticket.expires_at - now)
            .num_seconds()
            .max(0)
            .unsigned_abs(),
    }))
}

/// The logged-in user, every field of it (those others do not see included).
#[utoipa::path(get, path = "/users/me", tag = "users",
    responses((status = 200, body = UserOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn me(State(state): State<AppState>, actor: Actor) -> Out<UserOut> {
    get_user_by(state, actor, actor.user_id).await
}

/// Edit my profile, display name, status, status message or password.
#[utoipa::path(patch, path = "/users/me", tag = "users", request_body = UserPatch,
    responses((status = 200, body = UserOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn patch_me(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<UserPatch>,
) -> Out<UserOut> {
    patch_user_by(state, actor, actor.user_id, body).await
}

/// Delete my account.
#[utoipa::path(delete, path = "/users/me", tag = "users",
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn delete_me(
    State(state): State<AppState>,
    actor: Actor,
) -> ApiResult<StatusCode> {
    delete_user_by(state, actor, actor.user_id).await
}

/// The directory (admins see every field).
#[utoipa::path(get, path = "/users", tag = "users", params(ListQuery),
    responses((status = 200, body = ListPage<UserOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<ListQuery>,
) -> Out<ListPage<UserOut>> {
    let me = state.chat.user(actor.user_id, actor.user_id).await?;
    let (q, after) = (query.q.as_deref(), query.cursor.as_deref());
    let page = if me.is_admin {
        let users = state.chat.list_users(me.id, q, after, query.limit).await?;
        let ids: Vec<UserId> = users.items.iter().map(|u| u.id).collect();
        let online = state.online(me.id, &ids).await?;
        users.map(|u| {
            let online = online.contains(&u.id);
            UserOut::full(u, online)
        })
    } else {
        let entries = state.chat.directory(me.id, q, after, query.limit).await?;
        let ids: Vec<UserId> = entries.items.iter().map(|e| e.id).collect();
        let online = state.online(me.id, &ids).await?;
        entries.map(|e| {
            let online = online.contains(&e.id);
            UserOut::public(e, online)
        })
    };
    Ok(axum::Json(ListPage::of(page)))
}

/// A user: oneself or, for admins, anyone; others see the public entry.
#[utoipa::path(get, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = UserOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> Out<UserOut> {
    get_user_by(state, actor, user_id(id)).await
}

async fn get_user_by(state: AppState, actor: Actor, id: UserId) -> Out<UserOut> {
    match state.chat.user_view(actor.user_id, id).await? {
        UserView::Full(user) => Ok(axum::Json(state.user_out(actor.user_id, user).await?)),
        UserView::Public(entry) => {
            let online = state.online(actor.user_id, &[id]).await?.contains(&id);
            Ok(axum::Json(UserOut::public(entry, online)))
        }
    }
}

/// Edit a user: oneself, or anyone for admins.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    request_body = UserPatch,
    responses((status = 200, body = UserOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn patch_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(body): Json<UserPatch>,
) -> Out<UserOut> {
    patch_user_by(state, actor, user_id(id), body).await
}

async fn patch_user_by(state: AppState, actor: Actor, id: UserId, body: UserPatch) -> Out<UserOut> {
    // One update: everything in the body is checked before anything is changed.
    let update = UserUpdate {
        password: body
            .password
            .map(|change| PasswordChange::new(change.current, change.new)),
        display_name: body.display_name,
        email: body.email,
        profile: body.profile.map(Into::into),
        status: body.status.map(Into::into),
        status_message: body.status_message,
        is_admin: body.is_admin,
    };
    let user = state.chat.update_user(actor.user_id, id, update).await?;
    Ok(axum::Json(state.user_out(actor.user_id, user).await?))
}

/// Delete a user: oneself, or anyone for admins.
#[utoipa::path(delete, path = "/users/{id}", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    delete_user_by(state, actor, user_id(id)).await
}

async fn delete_user_by(state: AppState, actor: Actor, id: UserId) -> ApiResult<StatusCode> {
    state.chat.delete_user(actor.user_id, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user's rooms and conversations, paged by room id: oneself, or anyone for admins.
#[utoipa::path(get, path = "/users/{id}/rooms", tag = "users",
    params(("id" = Uuid, Path), ListQuery),
    responses((status = 200, body = ListPage<RoomOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn user_rooms(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<ListQuery>,
) -> Out<ListPage<RoomOut>> {
    let after = cursor(query.cursor.as_deref())?;
    let rooms = state
        .chat
        .rooms_of(
            actor.user_id,
            user_id(id),
            query.q.as_deref(),
            after,
            query.limit,
        )
        .await?;
    Ok(axum::Json(ListPage::of(rooms.map(|m| m.room))))
}
