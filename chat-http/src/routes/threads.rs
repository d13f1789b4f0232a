//! Threads and mentions: a room's threads, thread markers, and the messages that mention me.
//! (A thread's replies are a history page: `GET /rooms/{id}/messages?thread_root=`.)

use axum::extract::State;
use chat_core::MessageId;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Actor;
use crate::dto::{
    ListPage, MessageOut, PageQuery, ReadIn, ThreadMarkedOut, ThreadOut, cursor, room_id,
};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};

type Out<T> = ApiResult<axum::Json<T>>;

/// The room's threads, the most recently active first, each with the replies you have not
/// read.
#[utoipa::path(get, path = "/rooms/{id}/threads", tag = "threads",
    params(("id" = Uuid, Path), PageQuery),
    responses((status = 200, body = ListPage<ThreadOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn threads(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<PageQuery>,
) -> Out<ListPage<ThreadOut>> {
    let before: Option<u64> = cursor(query.cursor.as_deref())?;
    let found = state
        .chat
        .threads(actor.user_id, room_id(id), before, query.limit)
        .await?;
    Ok(axum::Json(ListPage::of(found)))
}

/// Moves my marker in a thread (never back) to its newest reply at or before `seq`.
#[utoipa::path(post, path = "/rooms/{id}/threads/{root_id}/read", tag = "threads",
    params(("id" = Uuid, Path), ("root_id" = Uuid, Path)), request_body = ReadIn,
    responses((status = 200, body = ThreadMarkedOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn mark_thread_read(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, root)): Path<(Uuid, Uuid)>,
    Json(body): Json<ReadIn>,
) -> Out<ThreadMarkedOut> {
    let unread = state
        .chat
        .mark_thread_read(actor.user_id, room_id(id), MessageId(root), body.seq)
        .await?;
    Ok(axum::Json(ThreadMarkedOut {
        root_id: root,
        unread,
    }))
}

/// Messages that mention me (by name or the whole room), newest first.
#[utoipa::path(get, path = "/messages/mentions", tag = "threads", params(PageQuery),
    responses((status = 200, body = ListPage<MessageOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn mentions(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> Out<ListPage<MessageOut>> {
    let before: Option<MessageId> = cursor(query.cursor.as_deref())?;
    let found = state
        .chat
        .mentions(actor.user_id, before, query.limit)
        .await?;
    Ok(axum::Json(ListPage::of(found)))
}
