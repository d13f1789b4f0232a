//! `GET /events`: the live WebSocket. Server frames carry the events of the user's rooms;
//! client frames send messages (answered by an ack or an error), typing and ping.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::request::Parts;
use axum::response::Response;
use chat_core::auth::Authenticated;
use chat_core::events::{Event, Subscription};
use chat_core::{MessageId, NewMessage, RoomId, UserId};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;
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
    let actor = match &query.ticket {
        Some(_) => None,
        None => Some(
            state
                .authenticator
                .authenticate(&state.chat, &parts)
                .await?,
        ),
    };
    let upgrade = upgrade.map_err(|e| ApiError::malformed(e.body_text()))?;
    // The feed ends when its login ends, on any server: that is what closes the socket.
    let feed = match (query.ticket, actor) {
        (Some(ticket), _) => state.chat.subscribe_with_ticket(&ticket).await?,
        (
            None,
            Some(Actor {
                user_id,
                session_id: Some(session_id),
            }),
        ) => {
            let login = Authenticated {
                user_id,
                session_id,
            };
            state.chat.subscribe_login(login).await?
        }
        (None, Some(actor)) => state.chat.subscribe(actor.user_id).await?,
        (None, None) => return Err(ApiError::unauthenticated()),
    };
    let max = state.limits.max_ws_message_bytes;
    // Small buffers: an idle socket should cost little (tungstenite's defaults reserve 128 KiB
    // for reading alone). Frames wait in this socket's own queue, bounded in `serve`.
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(socket, state, feed)))
}

async fn serve(socket: WebSocket, state: AppState, mut feed: Subscription) {
    let _open = state.sockets.open();
    let actor = Actor {
        user_id: feed.user(),
        session_id: feed.session(),
    };
    let (outgoing, mut incoming) = socket.split();
    let queue = Outgoing::start(outgoing, &state.limits);
    loop {
        let queued = tokio::select! {
            event = feed.recv() => match event.as_deref() {
                Some(Event::LoginEnded { .. }) => {
                    queue.close(4001, "logged out");
                    break;
                }
                Some(event) => match event_frame(event, actor.user_id) {
                    Some(frame) => queue.event(frame),
                    None => true,
                },
                // The feed could not go on (see `Subscription`): the client reconnects and
                // catches up.
                None => {
                    queue.close(1011, "live feed ended; reconnect");
                    break;
                }
            },
            frame = incoming.next() => {
                let reply = match frame {
                    Some(Ok(Message::Text(text))) => client_frame(&state, actor, &text).await,
                    Some(Ok(Message::Binary(_))) => Some(error_frame(None, ApiError::malformed(
                        "frames are JSON text",
                    ))),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                reply.is_none_or(|reply| queue.reply(reply))
            }
        };
        if !queued {
            tracing::info!(user = %actor.user_id, "dropping a WebSocket that stopped reading");
            queue.abort();
            return;
        }
    }
    queue.finish().await;
    feed.close().await;
}

/// A socket's outgoing frames: a queue bounded in bytes, drained by a writer task, so that a
/// client that reads slowly never holds up this socket's reading nor anything else.
///
/// - Events that would pass the bound are dropped, and once the queue has drained the client
///   gets one `resync` frame (it then catches up from the store), as when the bus drops events.
/// - Replies (acks, errors, pongs) that would pass the bound mean the client keeps sending
///   while reading nothing: the connection is dropped.
/// - A write that does not complete within `ws_write_timeout` (the client reads nothing at
///   all) drops the connection too.
struct Outgoing {
    frames: mpsc::UnboundedSender<Message>,
    shared: Arc<Backlog>,
    max_queued: usize,
    writer: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Backlog {
    /// Bytes of frames queued and not yet written.
    queued: AtomicUsize,
    /// Events were dropped: send `resync` once the queue is empty.
    behind: AtomicBool,
}

impl Outgoing {
    fn start(mut sink: SplitSink<WebSocket, Message>, limits: &crate::Limits) -> Self {
        let (frames, mut queue) = mpsc::unbounded_channel::<Message>();
        let shared = Arc::new(Backlog::default());
        let backlog = Arc::clone(&shared);
        let timeout = limits.ws_write_timeout;
        let writer = tokio::spawn(async move {
            while let Some(frame) = queue.recv().await {
                let size = frame_size(&frame);
                let mut sent = tokio::time::timeout(timeout, sink.send(frame)).await;
                backlog.queued.fetch_sub(size, Ordering::Relaxed);
                if queue.is_empty() && backlog.behind.swap(false, Ordering::Relaxed) {
                    let resync = Message::Text(json!({ "type": "resync" }).to_string().into());
                    sent = tokio::time::timeout(timeout, sink.send(resync)).await;
                }
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        Self {
            frames,
            shared,
            max_queued: limits.ws_max_backlog_bytes,
            writer,
        }
    }

    /// Queues a frame if the bound allows; whether it did.
    fn push(&self, frame: Message) -> bool {
        let size = frame_size(&frame);
        if self.shared.queued.fetch_add(size, Ordering::Relaxed) + size > self.max_queued {
            self.shared.queued.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        self.frames.send(frame).is_ok()
    }

    /// Queues an event's frame, or drops it for a later `resync`; false once the writer is gone.
    fn event(&self, frame: Value) -> bool {
        if self.shared.behind.load(Ordering::Relaxed) {
            return !self.frames.is_closed();
        }
        if !self.push(Message::Text(frame.to_string().into())) {
            self.shared.behind.store(true, Ordering::Relaxed);
        }
        !self.frames.is_closed()
    }

    /// Queues a reply; false when the client is too far behind to take it.
    fn reply(&self, frame: Value) -> bool {
        self.push(Message::Text(frame.to_string().into()))
    }

    fn close(&self, code: u16, reason: &'static str) {
        let reason = Utf8Bytes::from_static(reason);
        // A full queue cannot take the close frame: the socket is then just dropped.
        let _ = self.push(Message::Close(Some(CloseFrame { code, reason })));
    }

    /// Drops the connection without writing what is queued.
    fn abort(self) {
        self.writer.abort();
    }

    /// Writes what is queued (for a few seconds at most), then closes.
    async fn finish(self) {
        drop(self.frames);
        let mut writer = self.writer;
        if tokio::time::timeout(Duration::from_secs(5), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
    }
}

fn frame_size(frame: &Message) -> usize {
    match frame {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
        Message::Close(_) => 2,
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

/// The frame of an event, as `viewer` sees it; `None` for events without a frame. The frame's
/// `type` is the event's name.
fn event_frame(event: &Event, viewer: UserId) -> Option<Value> {
    let message = |m: &chat_core::Message| MessageOut::for_viewer(m.clone(), viewer);
    let mut frame = match event {
        Event::MessageCreated { message: m }
        | Event::MessageUpdated { message: m }
        | Event::MessageDeleted { message: m } => json!({ "message": message(m) }),
        Event::MemberJoined { member } | Event::MemberUpdated { member } => {
            json!({ "member": MemberOut::from(member.clone()) })
        }
        Event::MemberLeft {
            room_id,
            user_id,
            removed_by,
        } => json!({ "room_id": room_id, "user_id": user_id, "removed_by": removed_by }),
        Event::RoomUpdated { room } => json!({ "room": RoomOut::from(room.clone()) }),
        Event::RoomDeleted { room_id } => json!({ "room_id": room_id }),
        Event::ReadUpdated {
            room_id,
            user_id,
            last_read_seq,
        } => json!({ "room_id": room_id, "user_id": user_id, "last_read_seq": last_read_seq }),
        Event::Typing {
            room_id,
            user_id,
            typing,
        } => json!({ "room_id": room_id, "user_id": user_id, "typing": typing }),
        Event::Presence {
            room_id,
            user_id,
            presence,
            status_message,
            online,
        } => json!({
            "room_id": room_id,
            "user_id": user_id,
            "status": Status::from(*presence),
            "status_message": status_message,
            "online": online,
        }),
        Event::Resync => json!({}),
        _ => return None,
    };
    frame["type"] = event.name().into();
    Some(frame)
}
