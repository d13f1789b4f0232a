//! `GET /events`: the live WebSocket. Server frames carry the events of the user's rooms;
//! client frames send messages (answered by an ack or an error), typing and ping.

use std::collections::VecDeque;
use std::task::{Poll, ready};
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
use tokio::time::Instant;
use uuid::Uuid;

use crate::AppState;
use crate::auth::Actor;
use crate::dto::{MemberOut, MessageOut, RoomOut, Status};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::serve::ConnectionSlot;

/// `?ticket=` for browsers, which cannot set headers on a WebSocket.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
        thread_root: Option<Uuid>,
        #[serde(default)]
        mentions: Vec<Uuid>,
        #[serde(default)]
        mentions_room: bool,
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
/// `reaction.added`, `reaction.removed` (`reaction`: `room_id`, `message_id`, `seq`,
/// `change_id`, `user_id`, `key`), `member.joined`, `member.left`, `member.updated`, `room.updated`, `room.deleted`,
/// `read.updated`, `typing`, `status.updated`, `resync`, `ack`, `error`, `pong`. Client frames:
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
    let credentials = match query.ticket {
        Some(ticket) => Credentials::Ticket(ticket),
        None => Credentials::Actor(
            state
                .authenticator
                .authenticate(&state.chat, &parts)
                .await?,
        ),
    };
    let upgrade = upgrade.map_err(|e| ApiError::malformed(e.body_text()))?;
    // The feed ends when its login ends, on any server: that is what closes the socket.
    let feed = match credentials {
        Credentials::Ticket(ticket) => state.chat.subscribe_with_ticket(&ticket).await?,
        Credentials::Actor(Actor {
            user_id,
            session_id: Some(session_id),
        }) => {
            let login = Authenticated {
                user_id,
                session_id,
            };
            state.chat.subscribe_login(login).await?
        }
        // A host's own authentication: no login of ours to follow.
        Credentials::Actor(actor) => state.chat.subscribe(actor.user_id).await?,
    };
    // Served by `chat_http::serve`: the socket keeps the connection's place in the cap.
    let slot = parts.extensions.get::<ConnectionSlot>().cloned();
    let max = state.limits.max_ws_message_bytes;
    // Small buffers: an idle socket should cost little (tungstenite's defaults reserve 128 KiB
    // for reading alone). Frames wait in this socket's own queue, bounded in `serve`.
    Ok(upgrade
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| serve(socket, state, feed, slot)))
}

/// Whether reading failed on a message or frame over `max_ws_message_bytes`: the socket can
/// still say so (1009) before it closes.
fn too_big(error: &axum::Error) -> bool {
    let cause = std::error::Error::source(error).and_then(|e| e.downcast_ref());
    matches!(cause, Some(tungstenite::Error::Capacity(_)))
}

/// How a WebSocket request identified itself.
enum Credentials {
    Ticket(String),
    Actor(Actor),
}

async fn serve(
    socket: WebSocket,
    state: AppState,
    mut feed: Subscription,
    _slot: Option<ConnectionSlot>,
) {
    let _open = state.sockets.open();
    let actor = Actor {
        user_id: feed.user(),
        session_id: feed.session(),
    };
    let (mut sink, mut incoming) = socket.split();
    let mut out = Outgoing::new(&state.limits);
    loop {
        let (work, stall) = (out.has_work(), out.stall_deadline());
        let queued = tokio::select! {
            // Writing first: what is queued goes out before more is taken on.
            biased;
            written = out.write(&mut sink), if work => written.is_ok(),
            () = tokio::time::sleep_until(stall), if work => {
                tracing::info!(user = %actor.user_id, "dropping a WebSocket that reads nothing");
                return;
            }
            // `recv` is cancel safe: a client frame arriving first loses no event.
            event = feed.recv() => match event.as_deref() {
                Some(Event::LoginEnded { .. }) => {
                    out.close(4001, "logged out");
                    break;
                }
                Some(event) => event_frame(event).is_none_or(|frame| out.event(frame)),
                // The feed could not go on (see `Subscription`): the client reconnects and
                // catches up.
                None => {
                    out.close(1011, "live feed ended; reconnect");
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
                    Some(Err(error)) if too_big(&error) => {
                        out.close(1009, "message too big");
                        break;
                    }
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                };
                reply.is_none_or(|reply| out.reply(reply))
            }
        };
        if !queued {
            tracing::info!(user = %actor.user_id, "dropping a WebSocket that stopped reading");
            return;
        }
    }
    // Write what is queued (the close frame included), for a few seconds at most.
    if let Ok(Ok(())) = tokio::time::timeout(Duration::from_secs(5), out.write(&mut sink)).await {
        let _ = sink.close().await;
    }
    feed.close().await;
}

/// A socket's outgoing frames, queued in the socket's own task and bounded in bytes, so that a
/// client that reads slowly never holds up this socket's reading nor anything else.
///
/// - Events that would pass the bound are dropped, and once the queue has drained the client
///   gets one `resync` frame (it then catches up from the store), as when the bus drops events.
/// - Replies (acks, errors, pongs) that would pass the bound mean the client keeps sending
///   while reading nothing: the connection is dropped.
/// - When nothing queued could be written for `ws_write_timeout` (the client reads nothing at
///   all), the connection is dropped too.
struct Outgoing {
    frames: VecDeque<Message>,
    /// Bytes of `frames`.
    queued: usize,
    max_queued: usize,
    /// Events were dropped: send `resync` once the queue is empty.
    behind: bool,
    /// Frames were handed to the socket and not flushed yet.
    unflushed: bool,
    /// When the socket last took a frame, or the queue last became non-empty.
    progress: Instant,
    write_timeout: Duration,
}

impl Outgoing {
    fn new(limits: &crate::Limits) -> Self {
        Self {
            frames: VecDeque::new(),
            queued: 0,
            max_queued: limits.ws_max_backlog_bytes,
            behind: false,
            unflushed: false,
            progress: Instant::now(),
            write_timeout: limits.ws_write_timeout,
        }
    }

    fn has_work(&self) -> bool {
        !self.frames.is_empty() || self.unflushed || self.behind
    }

    fn stall_deadline(&self) -> Instant {
        self.progress + self.write_timeout
    }

    /// Queues a frame if the bound allows; whether it did.
    fn push(&mut self, frame: Message) -> bool {
        let size = frame_size(&frame);
        if self.queued + size > self.max_queued {
            return false;
        }
        if !self.has_work() {
            self.progress = Instant::now();
        }
        self.queued += size;
        self.frames.push_back(frame);
        true
    }

    /// Queues an event's frame, or drops it for a later `resync`. Never fails.
    fn event(&mut self, frame: Value) -> bool {
        if !self.behind && !self.push(Message::Text(frame.to_string().into())) {
            self.behind = true;
        }
        true
    }

    /// Queues a reply; false when the client is too far behind to take it.
    fn reply(&mut self, frame: Value) -> bool {
        self.push(Message::Text(frame.to_string().into()))
    }

    fn close(&mut self, code: u16, reason: &'static str) {
        let reason = Utf8Bytes::from_static(reason);
        // A full queue cannot take the close frame: the socket is then just dropped.
        let _ = self.push(Message::Close(Some(CloseFrame { code, reason })));
    }

    /// Hands queued frames to the socket and flushes them. Cancel safe: the queue lives here,
    /// and a frame leaves it only once the socket has taken it.
    async fn write(&mut self, sink: &mut SplitSink<WebSocket, Message>) -> Result<(), axum::Error> {
        std::future::poll_fn(|cx| {
            loop {
                if self.frames.is_empty() && self.behind {
                    self.behind = false;
                    let resync = json!({ "type": "resync" }).to_string();
                    self.frames.push_back(Message::Text(resync.into()));
                }
                let Some(size) = self.frames.front().map(frame_size) else {
                    break;
                };
                ready!(sink.poll_ready_unpin(cx))?;
                if let Some(frame) = self.frames.pop_front() {
                    self.queued = self.queued.saturating_sub(size);
                    self.progress = Instant::now();
                    self.unflushed = true;
                    sink.start_send_unpin(frame)?;
                }
            }
            ready!(sink.poll_flush_unpin(cx))?;
            self.unflushed = false;
            Poll::Ready(Ok(()))
        })
        .await
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
            thread_root,
            mentions,
            mentions_room,
            metadata,
        } => {
            let new = NewMessage {
                body,
                reply_to: reply_to.map(MessageId),
                thread_root: thread_root.map(MessageId),
                mentions: mentions.into_iter().map(UserId).collect(),
                mentions_room,
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
                    let message = MessageOut::from(sent.message);
                    json!({ "type": "ack", "txn_id": txn_id, "message": message })
                }
                Err(error) => error_frame(txn_id, error),
            }
        }
        ClientFrame::Typing { room_id, typing } => {
            let typed = match state.rate.typing(actor.user_id) {
                Ok(()) => state
                    .chat
                    .typing(actor.user_id, RoomId(room_id), typing)
                    .await
                    .map_err(ApiError::from),
                Err(error) => Err(error),
            };
            match typed {
                Ok(()) => return None,
                Err(error) => error_frame(None, error),
            }
        }
        ClientFrame::Ping => json!({ "type": "pong" }),
    })
}

/// The frame of an event (as `Chat` delivered it to this user); `None` for events without a
/// frame. The frame's
/// `type` is the event's name.
fn event_frame(event: &Event) -> Option<Value> {
    // Reactions are each reader's own (`me`): a message in an event carries none, and the
    // `reaction.*` frames say how they change.
    let message = |m: &chat_core::Message| {
        let mut message = serde_json::to_value(MessageOut::from(m.clone())).unwrap_or_default();
        if let Some(fields) = message.as_object_mut() {
            fields.remove("reactions");
        }
        message
    };
    let mut frame = match event {
        Event::MessageCreated { message: m }
        | Event::MessageUpdated { message: m }
        | Event::MessageDeleted { message: m } => json!({ "message": message(m) }),
        Event::ReactionAdded { reaction } | Event::ReactionRemoved { reaction } => {
            json!({ "reaction": reaction })
        }
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
        Event::StatusUpdated {
            room_id,
            user_id,
            status,
            status_message,
            online,
        } => json!({
            "room_id": room_id,
            "user_id": user_id,
            "status": Status::from(*status),
            "status_message": status_message,
            "online": online,
        }),
        Event::Resync => json!({}),
        _ => return None,
    };
    frame["type"] = event.name().into();
    Some(frame)
}
