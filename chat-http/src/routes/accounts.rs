//! `/auth/*` and `/users/*`.

use axum::extract::State;
use axum::http::StatusCode;
use chat_core::auth::LoginName;
use chat_core::auth::TokenPair;
use chat_core::{NewUser, UserId, UserUpdate};
use uuid::Uuid;

use crate::AppState;
use crate::auth::{Actor, bearer};
use crate::dto::{
    ListPage, ListQuery, LoginIn, RefreshIn, RegisterIn, RoomOut, TicketOut, TokensOut, UserOut,
    UserPatch, user_id,
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
    pub(crate) fn user_out(&self, user: chat_core::User) -> UserOut {
        let online = self.sockets.is_online(user.id);
        UserOut::full(user, online)
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
    Ok((StatusCode::CREATED, axum::Json(state.user_out(user))))
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
    let account = match &name {
        LoginName::Username(name) | LoginName::Email(name) => name.trim().to_lowercase(),
    };
    state.failed_logins.check(&account)?;
    let login = state.chat.login(name, &body.password).await;
    state.failed_logins.record(&account, login.is_ok());
    let login = login?;
    let now = chrono::Utc::now();
    let user = state.user_out(login.user);
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

/// Revoke this login at once and close its WebSockets.
#[utoipa::path(post, path = "/auth/logout", tag = "auth",
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn logout(
    State(state): State<AppState>,
    actor: Actor,
    request: axum::http::request::Parts,
) -> ApiResult<StatusCode> {
    let token = bearer(&request).ok_or_else(ApiError::unauthenticated)?;
    state.chat.logout(token).await?;
    if let Some(session) = actor.session_id {
        state.sockets.close(actor.user_id, Some(session));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A single-use ticket for opening `/events` from a browser.
#[utoipa::path(post, path = "/auth/ws-ticket", tag = "auth",
    responses((status = 200, body = TicketOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn ws_ticket(State(state): State<AppState>, actor: Actor) -> Out<TicketOut> {
    Ok(axum::Json(TicketOut {
        ticket: state.tickets.issue(actor),
        expires_in: state.tickets.lifetime().as_secs(),
    }))
}

/// Me.
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
    let items: Vec<UserOut> = if me.is_admin {
        let users = state.chat.list_users(me.id, q, after, query.limit).await?;
        users.into_iter().map(|u| state.user_out(u)).collect()
    } else {
        let entries = state.chat.directory(me.id, q, after, query.limit).await?;
        entries
            .into_iter()
            .map(|e| {
                let online = state.sockets.is_online(e.id);
                UserOut::public(e, online)
            })
            .collect()
    };
    let limit = query.limit.unwrap_or(state.chat.config().default_page_size) as usize;
    let next_cursor = (items.len() == limit)
        .then(|| items.last().map(|u| u.username.clone()))
        .flatten();
    Ok(axum::Json(ListPage { items, next_cursor }))
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
    match state.chat.user(actor.user_id, id).await {
        Ok(user) => Ok(axum::Json(state.user_out(user))),
        Err(chat_core::Error::Forbidden(_)) => {
            let entry = state.chat.directory_entry(actor.user_id, id).await?;
            let online = state.sockets.is_online(id);
            Ok(axum::Json(UserOut::public(entry, online)))
        }
        Err(error) => Err(error.into()),
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
    if let Some(change) = &body.password {
        if id != actor.user_id {
            return Err(chat_core::Error::Forbidden("only the user changes their password").into());
        }
        state
            .chat
            .change_password(actor.user_id, &change.current, &change.new)
            .await?;
        state.sockets.close(actor.user_id, None);
    }
    let update = UserUpdate {
        display_name: body.display_name,
        email: body.email,
        profile: body.profile.map(Into::into),
        presence: body.status.map(Into::into),
        status_message: body.status_message,
        is_admin: body.is_admin,
    };
    let user = state.chat.update_user(actor.user_id, id, update).await?;
    Ok(axum::Json(state.user_out(user)))
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
    state.sockets.close(id, None);
    Ok(StatusCode::NO_CONTENT)
}

/// A user's rooms and conversations: oneself, or anyone for admins.
#[utoipa::path(get, path = "/users/{id}/rooms", tag = "users", params(("id" = Uuid, Path)),
    responses((status = 200, body = ListPage<RoomOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn user_rooms(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> Out<ListPage<RoomOut>> {
    let rooms = state.chat.rooms_of(actor.user_id, user_id(id)).await?;
    let items = rooms.into_iter().map(|m| m.room.into()).collect();
    Ok(axum::Json(ListPage {
        items,
        next_cursor: None,
    }))
}
