//! `GET /events`: the live WebSocket. Server frames carry the events of the user's rooms;
//! client frames send messages (answered by an ack or an error), typing and ping.

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::Response;
use chat_core::events::Event;
use chat_core::{MessageId, NewMessage, RoomId, UserId};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::AppState;
use crate::auth::Actor;
use crate::dto::{MemberOut, MessageOut, RoomOut, Status};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;

/// `?ticket=` for browsers, which cannot set headers on a WebSocket.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct EventsQuery {
    /// A ticket from `POST /auth/ws-ticket` (single use).
    ticket: Option<String>,
}

/// Frames a client sends.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientFrame {
    Send {
        room_id: Uuid,
        body: String,
        txn_id: Option<String>,
        reply_to: Option<Uuid>,
        metadata: Option<Value>,
    },
    Typing {
        room_id: Uuid,
        #[serde(default = "yes")]
        typing: bool,
    },
    Ping,
}

fn yes() -> bool {
    true
}

/// Open the live event stream (WebSocket). Authenticate with the `Authorization` header or
/// `?ticket=`. Server frames: `message.created`, `message.updated`, `message.deleted`,
/// `member.joined`, `member.left`, `member.updated`, `room.updated`, `room.deleted`,
/// `read.updated`, `typing`, `presence`, `resync`, `ack`, `error`, `pong`. Client frames:
/// `{"type":"send","room_id","body","txn_id"}`, `{"type":"typing","room_id"}`,
/// `{"type":"ping"}`.
#[utoipa::path(get, path = "/events", tag = "events", params(EventsQuery),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = "4XX", body = ErrorBody)),
    security(("bearer" = [])))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    parts: Parts,
) -> Result<Response, ApiError> {
    let actor = match query.ticket {
        Some(ticket) => state
            .tickets
            .redeem(&ticket)
            .ok_or_else(ApiError::unauthenticated)?,
        None => {
            state
                .authenticator
                .authenticate(&state.chat, &parts)
                .await?
        }
    };
    let upgrade = upgrade.map_err(|e| ApiError::malformed(e.body_text()))?;
    let max = state.limits.max_ws_message_bytes;
    // Small buffers: an idle socket should cost little (tungstenite's defaults reserve 128 KiB
    // for reading alone); a reader that stops reading is cut off once 1 MiB waits for it.
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(socket, state, actor)))
}

async fn serve(socket: WebSocket, state: AppState, actor: Actor) {
    let registration = state.sockets.register(actor.user_id, actor.session_id);
    let mut closed = registration.closed.clone();
    let mut feed = match state.chat.subscribe(actor.user_id).await {
        Ok(feed) => feed,
        Err(error) => {
            tracing::warn!(%error, "cannot subscribe a socket");
            return;
        }
    };
    let (mut outgoing, mut incoming) = socket.split();
    loop {
        let reply = tokio::select! {
            _ = closed.changed() => {
                let close = CloseFrame { code: 4001, reason: Utf8Bytes::from_static("logged out") };
                let _ = outgoing.send(Message::Close(Some(close))).await;
                break;
            }
            event = feed.recv() => match event {
                Some(event) => event_frame(&state, &event, actor.user_id),
                None => break,
            },
            frame = incoming.next() => match frame {
                Some(Ok(Message::Text(text))) => client_frame(&state, actor, &text).await,
                Some(Ok(Message::Binary(_))) => Some(error_frame(None, ApiError::malformed(
                    "frames are JSON text",
                ))),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
            },
        };
        if let Some(reply) = reply
            && outgoing
                .send(Message::Text(reply.to_string().into()))
                .await
                .is_err()
        {
            break;
        }
    }
}

fn error_frame(txn_id: Option<String>, error: ApiError) -> Value {
    json!({ "type": "error", "txn_id": txn_id, "error": error.detail() })
}

/// The answer to a client frame, if it has one (a typing notice that went through has none).
async fn client_frame(state: &AppState, actor: Actor, text: &str) -> Option<Value> {
    let frame = match serde_json::from_str::<ClientFrame>(text) {
        Ok(frame) => frame,
        Err(error) => return Some(error_frame(None, ApiError::malformed(error.to_string()))),
    };
    Some(match frame {
        ClientFrame::Send {
            room_id,
            body,
            txn_id,
            reply_to,
            metadata,
        } => {
            let new = NewMessage {
                body,
                reply_to: reply_to.map(MessageId),
                txn_id: txn_id.clone(),
                metadata,
            };
            let sent = match state.rate.send(actor.user_id) {
                Ok(()) => state
                    .chat
                    .send(actor.user_id, RoomId(room_id), new)
                    .await
                    .map_err(ApiError::from),
                Err(error) => Err(error),
            };
            match sent {
                Ok(sent) => {
                    if sent.created {
                        state.metrics.messages.inc();
                    }
                    let message = MessageOut::for_viewer(sent.message, actor.user_id);
                    json!({ "type": "ack", "txn_id": txn_id, "message": message })
                }
                Err(error) => error_frame(txn_id, error),
            }
        }
        ClientFrame::Typing { room_id, typing } => {
            match state
                .chat
                .typing(actor.user_id, RoomId(room_id), typing)
                .await
            {
                Ok(()) => return None,
                Err(error) => error_frame(None, error.into()),
            }
        }
        ClientFrame::Ping => json!({ "type": "pong" }),
    })
}

/// The frame of an event, as `viewer` sees it; `None` for events without a frame.
fn event_frame(state: &AppState, event: &Event, viewer: UserId) -> Option<Value> {
    let message = |m: &chat_core::Message| MessageOut::for_viewer(m.clone(), viewer);
    Some(match event {
        Event::MessageCreated { message: m } => {
            json!({ "type": "message.created", "message": message(m) })
        }
        Event::MessageEdited { message: m } => {
            json!({ "type": "message.updated", "message": message(m) })
        }
        Event::MessageDeleted { message: m } => {
            json!({ "type": "message.deleted", "message": message(m) })
        }
        Event::MemberJoined { member } => {
            json!({ "type": "member.joined", "member": MemberOut::from(member.clone()) })
        }
        Event::MemberUpdated { member } => {
            json!({ "type": "member.updated", "member": MemberOut::from(member.clone()) })
        }
        Event::MemberLeft {
            room_id,
            user_id,
            removed_by,
        } => json!({
            "type": "member.left",
            "room_id": room_id,
            "user_id": user_id,
            "removed_by": removed_by,
        }),
        Event::RoomUpdated { room } => {
            json!({ "type": "room.updated", "room": RoomOut::from(room.clone()) })
        }
        Event::RoomDeleted { room_id } => json!({ "type": "room.deleted", "room_id": room_id }),
        Event::ReadMarker {
            room_id,
            user_id,
            last_read_seq,
        } => json!({
            "type": "read.updated",
            "room_id": room_id,
            "user_id": user_id,
            "last_read_seq": last_read_seq,
        }),
        Event::Typing {
            room_id,
            user_id,
            typing,
        } => json!({ "type": "typing", "room_id": room_id, "user_id": user_id, "typing": typing }),
        Event::Presence {
            room_id,
            user_id,
            presence,
            status_message,
        } => json!({
            "type": "presence",
            "room_id": room_id,
            "user_id": user_id,
            "status": Status::from(*presence),
            "status_message": status_message,
            "online": state.sockets.is_online(*user_id),
        }),
        Event::Resync => json!({ "type": "resync" }),
        _ => return None,
    })
}
