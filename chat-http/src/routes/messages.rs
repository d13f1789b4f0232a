//! Messages in rooms and direct conversations, and the "what's new for me" views.

use axum::extract::State;
use axum::http::StatusCode;
use chat_core::{MessageCursor, MessageId, Sent, UserId};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Actor;
use crate::dto::{
    ChangesOut, ChangesQuery, ConversationOut, EditIn, HistoryOut, HistoryQuery, ListPage,
    MessageIn, MessageOut, PageQuery, RoomUnreadOut, UnreadSummaryOut, UserOut, cursor, room_id,
    user_id,
};
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Json, Path, Query};

type Out<T> = ApiResult<axum::Json<T>>;

/// 201 for a new message, 200 for a retried transaction id.
fn sent(state: &AppState, sent: Sent) -> (StatusCode, axum::Json<MessageOut>) {
    let status = if sent.created {
        state.metrics.messages.inc();
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, axum::Json(MessageOut::from(sent.message)))
}

fn history_query(query: HistoryQuery) -> chat_core::HistoryQuery {
    chat_core::HistoryQuery {
        before: query.before,
        after: query.after,
        limit: query.limit,
    }
}

/// Post a message (joining a public password-less room implicitly). The same `txn_id` again
/// answers 200 with the first message.
#[utoipa::path(post, path = "/rooms/{id}/messages", tag = "messages", params(("id" = Uuid, Path)),
    request_body = MessageIn,
    responses((status = 201, body = MessageOut), (status = 200, body = MessageOut),
        (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn send(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Json(body): Json<MessageIn>,
) -> ApiResult<(StatusCode, axum::Json<MessageOut>)> {
    state.rate.send(actor.user_id)?;
    let message = state
        .chat
        .send(actor.user_id, room_id(id), body.into())
        .await?;
    Ok(sent(&state, message))
}

/// A page of history, oldest first; with `thread_root`, of that thread's replies only.
#[utoipa::path(get, path = "/rooms/{id}/messages", tag = "messages",
    params(("id" = Uuid, Path), HistoryQuery),
    responses((status = 200, body = HistoryOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn list(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<axum::Json<HistoryOut>> {
    let room = room_id(id);
    let found = match query.thread_root {
        Some(root) => {
            let query = history_query(query);
            let replies = state
                .chat
                .thread_replies(actor.user_id, room, MessageId(root), query);
            replies.await?
        }
        None => {
            let query = history_query(query);
            state.chat.history(actor.user_id, room, query).await?
        }
    };
    Ok(axum::Json(found.into()))
}

/// Everything that changed after a cursor — new, edited and deleted messages — for catching
/// up after a disconnect.
#[utoipa::path(get, path = "/rooms/{id}/changes", tag = "messages",
    params(("id" = Uuid, Path), ChangesQuery),
    responses((status = 200, body = ChangesOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn changes(
    State(state): State<AppState>,
    actor: Actor,
    Path(id): Path<Uuid>,
    Query(query): Query<ChangesQuery>,
) -> Out<ChangesOut> {
    let changes = state
        .chat
        .changes(actor.user_id, room_id(id), query.since, query.limit)
        .await?;
    // Caught up, the client goes on from the last change it saw.
    let next_cursor = changes
        .next_cursor
        .or(changes.items.last().map(|m| m.change_id))
        .unwrap_or(query.since);
    Ok(axum::Json(ChangesOut {
        has_more: changes.has_more(),
        items: changes.items.into_iter().map(MessageOut::from).collect(),
        next_cursor,
    }))
}

/// One message: also how a sender checks that a send was stored.
#[utoipa::path(get, path = "/rooms/{id}/messages/{message_id}", tag = "messages",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)),
    responses((status = 200, body = MessageOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn get(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, message)): Path<(Uuid, Uuid)>,
) -> Out<MessageOut> {
    let found = state
        .chat
        .message(actor.user_id, room_id(id), chat_core::MessageId(message))
        .await?;
    Ok(axum::Json(MessageOut::from(found)))
}

/// Edit my message.
#[utoipa::path(patch, path = "/rooms/{id}/messages/{message_id}", tag = "messages",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)), request_body = EditIn,
    responses((status = 200, body = MessageOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn edit(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, message)): Path<(Uuid, Uuid)>,
    Json(body): Json<EditIn>,
) -> Out<MessageOut> {
    let edited = state
        .chat
        .edit_message(
            actor.user_id,
            room_id(id),
            chat_core::MessageId(message),
            &body.body,
        )
        .await?;
    Ok(axum::Json(MessageOut::from(edited)))
}

/// React to a message with `key` (an emoji or a shortcode, at most 64 bytes). Again changes
/// nothing. Members only; the message comes back with its reactions.
#[utoipa::path(put, path = "/rooms/{id}/messages/{message_id}/reactions/{key}", tag = "messages",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path), ("key" = String, Path)),
    responses((status = 200, body = MessageOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn add_reaction(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, message, key)): Path<(Uuid, Uuid, String)>,
) -> Out<MessageOut> {
    let message = chat_core::MessageId(message);
    let chat = &state.chat;
    let reacted = chat.add_reaction(actor.user_id, room_id(id), message, &key);
    Ok(axum::Json(MessageOut::from(reacted.await?)))
}

/// Take my reaction `key` back from a message. One that is not there changes nothing.
#[utoipa::path(delete, path = "/rooms/{id}/messages/{message_id}/reactions/{key}",
    tag = "messages",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path), ("key" = String, Path)),
    responses((status = 200, body = MessageOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn remove_reaction(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, message, key)): Path<(Uuid, Uuid, String)>,
) -> Out<MessageOut> {
    let message = chat_core::MessageId(message);
    let chat = &state.chat;
    let reacted = chat.remove_reaction(actor.user_id, room_id(id), message, &key);
    Ok(axum::Json(MessageOut::from(reacted.await?)))
}

/// Delete a message (its sender, or the room's owner and admins); a tombstone keeps its place.
#[utoipa::path(delete, path = "/rooms/{id}/messages/{message_id}", tag = "messages",
    params(("id" = Uuid, Path), ("message_id" = Uuid, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    actor: Actor,
    Path((id, message)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    state
        .chat
        .delete_message(actor.user_id, room_id(id), chat_core::MessageId(message))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// My direct conversations, oldest first, paged.
#[utoipa::path(get, path = "/direct", tag = "direct", params(PageQuery),
    responses((status = 200, body = ListPage<ConversationOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn conversations(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> Out<ListPage<ConversationOut>> {
    let after = cursor(query.cursor.as_deref())?;
    let conversations = state
        .chat
        .direct_conversations(actor.user_id, after, query.limit)
        .await?;
    let others: Vec<UserId> = conversations
        .items
        .iter()
        .filter_map(|c| c.other.as_ref().map(|o| o.id))
        .collect();
    let online = state.online(actor.user_id, &others).await?;
    let conversations = conversations.map(|c| ConversationOut {
        room: c.room.into(),
        other: c.other.map(|other| {
            let online = online.contains(&other.id);
            UserOut::public(other, online)
        }),
        last_message: c.last_message.map(MessageOut::from),
        unread: c.unread,
    });
    Ok(axum::Json(ListPage::of(conversations)))
}

/// Send a direct message (the conversation is created on first use).
#[utoipa::path(post, path = "/direct/{user_id}/messages", tag = "direct",
    params(("user_id" = Uuid, Path)), request_body = MessageIn,
    responses((status = 201, body = MessageOut), (status = 200, body = MessageOut),
        (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn send_direct(
    State(state): State<AppState>,
    actor: Actor,
    Path(to): Path<Uuid>,
    Json(body): Json<MessageIn>,
) -> ApiResult<(StatusCode, axum::Json<MessageOut>)> {
    state.rate.send(actor.user_id)?;
    let message = state
        .chat
        .send_direct(actor.user_id, user_id(to), body.into())
        .await?;
    Ok(sent(&state, message))
}

/// The history of my conversation with one user.
#[utoipa::path(get, path = "/direct/{user_id}/messages", tag = "direct",
    params(("user_id" = Uuid, Path), HistoryQuery),
    responses((status = 200, body = HistoryOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn direct_history(
    State(state): State<AppState>,
    actor: Actor,
    Path(other): Path<Uuid>,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<axum::Json<HistoryOut>> {
    let found = state
        .chat
        .direct_history(actor.user_id, user_id(other), history_query(query))
        .await?;
    Ok(axum::Json(found.into()))
}

/// Unread counts across my rooms.
#[utoipa::path(get, path = "/unread", tag = "read state",
    responses((status = 200, body = UnreadSummaryOut), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn unread_summary(
    State(state): State<AppState>,
    actor: Actor,
) -> Out<UnreadSummaryOut> {
    let summary = state.chat.unread_summary(actor.user_id).await?;
    Ok(axum::Json(UnreadSummaryOut {
        total: summary.total,
        mentions: summary.mentions,
        threads: summary.threads,
        rooms: summary
            .rooms
            .into_iter()
            .map(|r| RoomUnreadOut {
                room_id: r.room_id.0,
                unread: r.unread,
                mentions: r.mentions,
                threads: r.threads,
            })
            .collect(),
    }))
}

/// My unread messages, room by room, each room's oldest first.
#[utoipa::path(get, path = "/messages/unread", tag = "read state", params(PageQuery),
    responses((status = 200, body = ListPage<MessageOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn unread_messages(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> Out<ListPage<MessageOut>> {
    let after: Option<MessageCursor> = cursor(query.cursor.as_deref())?;
    let found = state
        .chat
        .unread_messages(actor.user_id, after, query.limit)
        .await?;
    Ok(axum::Json(ListPage::of(found)))
}

/// Direct messages others sent me, conversation by conversation, each one's newest first.
#[utoipa::path(get, path = "/messages/received", tag = "direct", params(PageQuery),
    responses((status = 200, body = ListPage<MessageOut>), (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn received(
    State(state): State<AppState>,
    actor: Actor,
    Query(query): Query<PageQuery>,
) -> Out<ListPage<MessageOut>> {
    let after: Option<MessageCursor> = cursor(query.cursor.as_deref())?;
    let found = state
        .chat
        .messages_to_me(actor.user_id, after, query.limit)
        .await?;
    Ok(axum::Json(ListPage::of(found)))
}
