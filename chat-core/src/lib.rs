//! # chat-core
//!
//! An embeddable chat engine: users, group rooms and direct conversations, membership and
//! roles, messages with history, edits, deletes and catch-up, read markers and unread counts,
//! and live events — over storage the host chooses.
//!
//! - [`Chat`] is the one entry point. Every operation takes the acting user's id first and
//!   checks permissions itself.
//! - [`store`] holds the storage traits every backend implements, and [`store::MemoryStore`].
//! - [`events`] carries live delivery: [`Chat::subscribe`] yields only the events of the rooms
//!   a user belongs to.
//! - [`auth`] is the optional built-in password authentication; a host with its own identity
//!   creates users with [`Chat::create_user`] and never touches it.
//! - `testing` (feature `testing`) is the conformance suite every store must pass.
//!
//! ```
//! use std::sync::Arc;
//! use chat_core::{Chat, NewMessage, NewRoom, NewUser, store::MemoryStore};
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let chat = Chat::new(Arc::new(MemoryStore::new()));
//! let alice = chat.create_user(NewUser::named("alice")).await?;
//! let bob = chat.create_user(NewUser::named("bob")).await?;
//!
//! // Act as one user; a room handle takes only the other user's id where one is needed.
//! let (alice, bob) = (chat.as_user(alice.id), chat.as_user(bob.id));
//! let room = alice.create_room(NewRoom::named("general")).await?;
//! bob.room(room.id).join(None).await?;
//! alice.room(room.id).send(NewMessage::text("hi bob")).await?;
//! assert_eq!(bob.room(room.id).read_state().await?.unread, 1);
//!
//! bob.send_direct(alice.id(), NewMessage::text("hi alice")).await?;
//! assert_eq!(alice.unread().await?.total, 1);
//! # Ok::<_, chat_core::Error>(())
//! # }).unwrap();
//! ```

pub mod auth;
mod chat;
pub mod check;
pub mod clock;
mod config;
mod error;
pub mod events;
pub mod export;
pub mod ids;
pub mod import;
mod message;
mod page;
mod room;
pub mod search;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod user;
mod validate;

pub use crate::chat::{AsUser, Chat, ChatBuilder, InRoom};
pub use crate::config::{ChatConfig, HashCost};
pub use crate::error::{
    BoxError, Conflict, Denied, Entity, Error, Field, OpenError, Result, StoreError,
};
pub use crate::ids::{ConnectionId, MessageId, NodeId, RoomId, SessionId, UserId};
pub use crate::message::{
    DirectConversation, HistoryQuery, Message, NewMessage, Reaction, ReadState, RoomUnread, Sent,
    Thread, ThreadSummary, UnreadCounts, UnreadSummary,
};
pub use crate::page::{MessageCursor, Page};
pub use crate::room::{
    Member, MemberCursor, Membership, NewRoom, Role, Room, RoomKind, RoomUpdate, Visibility,
};
pub use crate::user::{
    DirectoryEntry, NewUser, PasswordChange, Profile, Status, User, UserUpdate, UserView,
};

/// The README's Rust examples, compiled and run as doc tests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExamples;
