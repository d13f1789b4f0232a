//! `/rooms/*`: rooms, membership and read state.

use axum::extract::State;
use axum::http::StatusCode;
use chat_core::{MemberCursor, NewRoom, Role, RoomUpdate};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Actor;
use crate::dto::{
    JoinIn, ListPage, MarkedOut, MemberIn, MemberOut, OwnerIn, PageQuery, ReadIn, RoomIn, RoomOut,
    RoomPatch, RoomsQuery, UnreadOut, cursor, room_id, user_id,
};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, JsonOrDefault, Path, Query};

type Out<T> = ApiResult<axum::Json<T>>;

/// Create a group room; I am its owner.
#[utoipa::path(post, path = "/rooms", tag = "rooms", request_body = RoomIn,
    responses((status = 201, body = RoomOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn create_room(
    State(state): State<AppState>,
    actor: Actor,
    Json(body): Json<RoomIn>,
) -> ApiResult<(StatusCode, axum::Json<RoomOut>)> {
    let new = NewRoom {
        name: body.name,
        topic: body.topic,
        alias: body.alias,
        visibility: body.visibility.map(Into::into).unwrap_or_default(),
        capacity: body.capacity,
        password: body.password,
        members: body.members.into_iter().map(user_id).collect(),
    };
    let room = state.chat.create_room(actor.user_id, new).await?;
    Ok((StatusCode::CREATED, axum::Json(room.into())))
}

/// Public rooms, or with `mine=true` my rooms and conversations.
#[utoipa::path(get, path = "/rooms", tag = "rooms", params(RoomsQuery),
    responses((status = 200, body = ListPage<RoomOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list_rooms(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<RoomsQuery>,
) -> Out<ListPage<RoomOut>> {
    let after = cursor(query.cursor.as_deref())?;
    let q = query.q.as_deref();
    let rooms = if query.mine == Some(true) {
        let mine = state
            .chat
            .rooms_of(actor.user_id, actor.user_id, q, after, query.limit)
            .await?;
        mine.map(|m| m.room)
    } else {
        state
            .chat
            .public_rooms(actor.user_id, q, after, query.limit)
            .await?
    };
    Ok(axum::Json(ListPage::of(rooms)))
}

/// A room: for members, or anyone when public.
#[utoipa::path(get, path = "/rooms/{id}", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 200, body = RoomOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_room(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> Out<RoomOut> {
    Ok(axum::Json(
        state.chat.room(actor.user_id, room_id(id)).await?.into(),
    ))
}

/// Edit a room: owner and admins.
#[utoipa::path(patch, path = "/rooms/{id}", tag = "rooms", params(("id" = Uuid, Path)),
    request_body = RoomPatch,
    responses((status = 200, body = RoomOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn patch_room(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(body): Json<RoomPatch>,
) -> Out<RoomOut> {
    let update = RoomUpdate {
        name: body.name,
        topic: body.topic,
        alias: body.alias,
        visibility: body.visibility.map(Into::into),
        capacity: body.capacity,
        password: body.password,
    };
    let room = state
        .chat
        .update_room(actor.user_id, room_id(id), update)
        .await?;
    Ok(axum::Json(room.into()))
}

/// Delete a room: the owner.
#[utoipa::path(delete, path = "/rooms/{id}", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn delete_room(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.chat.delete_room(actor.user_id, room_id(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Join a public room (with its password, if it has one).
#[utoipa::path(post, path = "/rooms/{id}/join", tag = "rooms", params(("id" = Uuid, Path)),
    request_body = JoinIn,
    responses((status = 200, body = MemberOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn join(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    JsonOrDefault(body): JsonOrDefault<JoinIn>,
) -> Out<MemberOut> {
    let member = state
        .chat
        .join_room(actor.user_id, room_id(id), body.password.as_deref())
        .await?;
    Ok(axum::Json(member.into()))
}

/// Leave a room (the owner hands ownership on).
#[utoipa::path(post, path = "/rooms/{id}/leave", tag = "rooms", params(("id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn leave(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    state.chat.leave_room(actor.user_id, room_id(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The members with their roles, in joining order, paged.
#[utoipa::path(get, path = "/rooms/{id}/members", tag = "rooms",
    params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = ListPage<MemberOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn members(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<PageQuery>,
) -> Out<ListPage<MemberOut>> {
    let after: Option<MemberCursor> = cursor(query.cursor.as_deref())?;
    let members = state
        .chat
        .members(actor.user_id, room_id(id), after, query.limit)
        .await?;
    Ok(axum::Json(ListPage::of(members)))
}

/// Add a member, or change an existing member's role: owner and admins (roles: the owner).
#[utoipa::path(put, path = "/rooms/{id}/members/{user_id}", tag = "rooms",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)), request_body = MemberIn,
    responses((status = 201, body = MemberOut), (status = 200, body = MemberOut),
        (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_member(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, user)): Path<(Uuid, Uuid)>,
    JsonOrDefault(body): JsonOrDefault<MemberIn>,
) -> ApiResult<(StatusCode, axum::Json<MemberOut>)> {
    let role: Role = body.role.map_or(Role::Member, Into::into);
    let (room, user) = (room_id(id), user_id(user));
    let (member, added) = state
        .chat
        .put_member(actor.user_id, room, user, role)
        .await?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(member.into())))
}

/// Hand ownership to another member: the owner only. The old owner becomes an admin.
#[utoipa::path(put, path = "/rooms/{id}/owner", tag = "rooms", params(("id" = Uuid, Path)),
    request_body = OwnerIn,
    responses((status = 200, body = MemberOut, description = "the new owner"),
        (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn put_owner(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(body): Json<OwnerIn>,
) -> Out<MemberOut> {
    let owner = state
        .chat
        .set_role(
            actor.user_id,
            room_id(id),
            user_id(body.user_id),
            Role::Owner,
        )
        .await?;
    Ok(axum::Json(owner.into()))
}

/// One member.
#[utoipa::path(get, path = "/rooms/{id}/members/{user_id}", tag = "rooms",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 200, body = MemberOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get_member(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, user)): Path<(Uuid, Uuid)>,
) -> Out<MemberOut> {
    let member = state
        .chat
        .member(actor.user_id, room_id(id), user_id(user))
        .await?;
    Ok(axum::Json(member.into()))
}

/// Remove a member (owner and admins), or leave (oneself).
#[utoipa::path(delete, path = "/rooms/{id}/members/{user_id}", tag = "rooms",
    params(("id" = Uuid, Path), ("user_id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, user)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .remove_member(actor.user_id, room_id(id), user_id(user))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mark the room read up to `seq` (never moves back).
#[utoipa::path(post, path = "/rooms/{id}/read", tag = "read state", params(("id" = Uuid, Path)),
    request_body = ReadIn,
    responses((status = 200, body = MarkedOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn mark_read(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(body): Json<ReadIn>,
) -> Out<MarkedOut> {
    let read = state
        .chat
        .mark_read(actor.user_id, room_id(id), body.seq)
        .await?;
    Ok(axum::Json(MarkedOut {
        room_id: id,
        last_read_seq: read.last_read_seq,
        unread: read.unread,
        mentions: read.mentions,
        threads: read.threads,
    }))
}

/// My read state in the room.
#[utoipa::path(get, path = "/rooms/{id}/unread", tag = "read state", params(("id" = Uuid, Path)),
    responses((status = 200, body = UnreadOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn unread(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
) -> Out<UnreadOut> {
    let read = state.chat.read_state(actor.user_id, room_id(id)).await?;
    Ok(axum::Json(UnreadOut {
        room_id: id,
        last_read_seq: read.last_read_seq,
        last_seq: read.last_seq,
        unread: read.unread,
        mentions: read.mentions,
        threads: read.threads,
    }))
}
