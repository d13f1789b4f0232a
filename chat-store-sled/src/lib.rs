//! # chat-store-sled
//!
//! The sled store of [`chat_core`]: pure Rust, no C library, no SQL; the same behaviour as every
//! other store (it passes the whole conformance suite).
//!
//! - **Atomicity**: every write that touches several trees is one sled transaction. Writes are
//!   also serialized by one lock (they are in-memory work, microseconds), so transactions never
//!   conflict and a closure runs once; it has no side effect outside the transaction anyway.
//! - **Durability**: [`Durability::Flushed`] (default) acknowledges a write only after a flush
//!   that covers it; writers waiting at the same time share one flush (group flush).
//!   [`Durability::Background`] leaves flushing to sled's background thread: fast, but a crash
//!   loses the last writes.
//! - **Format**: a `CHAT_FORMAT` file in the directory names the layout version. A directory
//!   with other content, or a newer version, is refused with [`OpenError::Incompatible`]
//!   before sled opens it, so nothing in it changes. Values are JSON of record types of this
//!   crate's own (`records.rs`), pinned byte for byte by a test, so changing a public type of
//!   `chat-core` cannot change what is on disk.
//!
//! ## Key layout
//!
//! One tree per kind of record. Ids are their 16 UUID bytes, counters 8 big-endian bytes, so
//! that byte order is the order scans need. Values are JSON.
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `users` | user | `User` |
//! | `usernames` / `emails` | lowercase name / email | user |
//! | `passwords` | user | Argon2id PHC string |
//! | `tokens` | SHA-256 of the token | token record (access, refresh or ticket) |
//! | `tokens_by_session` / `tokens_by_user` | session or user ‖ hash | — |
//! | `rooms` | room | `(Room, password hash)` |
//! | `aliases` | alias | room |
//! | `direct_pairs` | smaller user ‖ larger user | room |
//! | `members` | room ‖ user | `Member` (with the read marker) |
//! | `members_by_user` | user ‖ room | — |
//! | `messages` | room ‖ seq | `Message` |
//! | `message_ids` | message | room ‖ seq |
//! | `txn_ids` | sender ‖ txn id | message |
//! | `changes` | room ‖ change cursor | seq |
//! | `reactions` / `reaction_counts` | see `reactions.rs` | |
//! | `mentions` | user ‖ room ‖ seq | message |
//! | `mentions_by_id` | user ‖ message | room ‖ seq |
//! | `mentions_by_message` | room ‖ seq ‖ user | message |
//! | `thread_replies` | room ‖ root seq ‖ reply seq | the reply's place in its thread |
//! | `thread_activity` | room ‖ newest reply's seq | root seq |
//! | `thread_markers` | room ‖ root seq ‖ user | replies read ‖ following (1 byte) |
//! | `thread_markers_by_user` | user ‖ room ‖ root seq | — |
//! | `postings` | search term ‖ 0 ‖ room ‖ seq / 64 | the live messages there with the term (see `search.rs`) |
//! | `attempts` | key | attempts counted and when the window ends |
//! | `connections` | connection | node, user, expiry |
//! | `connections_by_user` / `connections_by_node` | user or node ‖ connection | — |
//! | `meta` | `import` | the mark of an unfinished import |
//!
//! History pages are range scans of `messages` under one room's prefix; a user's rooms a
//! prefix scan of `members_by_user`; token lookup one `get`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let store = chat_store_sled::SledStore::open("sled://chat-data").await?;
//! let chat = chat_core::Chat::new(std::sync::Arc::new(store));
//! # Ok(()) }
//! ```

mod attempts;
mod codec;
mod connections;
mod import;
mod messages;
mod reactions;
mod records;
mod rooms;
mod search;
mod threads;
mod tx;
mod users;

use std::path::{Path, PathBuf};

use chat_core::store::{BadLocation, Location};
pub use chat_core::{OpenError, StoreError};
pub use sled;

use crate::codec::{StoreResult, backend};
use crate::tx::{Trees, Tx, Writer};

/// The layout this code reads and writes.
const FORMAT: u32 = 1;
const FORMAT_FILE: &str = "CHAT_FORMAT";
const FORMAT_PREFIX: &str = "chat-engine sled format ";

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// After a flush that covers it (one flush per batch of concurrent writes): nothing
    /// acknowledged is lost in a crash.
    #[default]
    Flushed,
    /// Once applied; sled flushes in the background (every 500 ms by default): a crash may
    /// lose the most recent acknowledged writes.
    Background,
}

/// Every chat-core storage trait over one sled database.
#[derive(Debug)]
pub struct SledStore {
    db: sled::Db,
    trees: Trees,
    writer: Writer,
}

fn incompatible(dir: &Path, why: impl std::fmt::Display) -> OpenError {
    OpenError::Incompatible(format!("{}: {why}", dir.display()))
}

/// Refuses a directory that is not ours (or is newer), reading only; stamps a new one.
fn check_directory(dir: &Path) -> Result<(), OpenError> {
    let marker = dir.join(FORMAT_FILE);
    match std::fs::read_to_string(&marker) {
        Ok(text) => {
            let version = text
                .trim()
                .strip_prefix(FORMAT_PREFIX)
                .and_then(|v| v.parse::<u32>().ok())
                .ok_or_else(|| incompatible(dir, "not a chat database"))?;
            if version > FORMAT {
                return Err(incompatible(
                    dir,
                    format!("format {version} is newer than this code knows ({FORMAT})"),
                ));
            }
            Ok(())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let occupied = match std::fs::read_dir(dir) {
                Ok(mut entries) => entries.next().is_some(),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
                Err(error) => return Err(OpenError::backend(error)),
            };
            if occupied {
                return Err(incompatible(dir, "not a chat database"));
            }
            std::fs::create_dir_all(dir).map_err(OpenError::backend)?;
            std::fs::write(&marker, format!("{FORMAT_PREFIX}{FORMAT}\n"))
                .map_err(OpenError::backend)
        }
        Err(error) => Err(OpenError::backend(error)),
    }
}

impl SledStore {
    /// Opens (or creates) the database in a directory or at a `sled://` URL, flushing before
    /// every acknowledgement.
    pub async fn open(location: &str) -> Result<Self, OpenError> {
        Self::open_with(location, Durability::default()).await
    }

    /// Opens (or creates) the database with the given durability.
    ///
    /// Errors: [`OpenError::Incompatible`] for a directory of other content or of a newer
    /// format; it is then left untouched.
    pub async fn open_with(location: &str, durability: Durability) -> Result<Self, OpenError> {
        // A `sled://` URL, read by `Location`, or a plain directory path.
        let dir = match location.parse::<Location>() {
            Ok(Location::Sled(dir)) => dir,
            _ if !location.is_empty() && !location.contains("://") => PathBuf::from(location),
            _ => {
                return Err(OpenError::BadLocation(BadLocation {
                    url: location.to_owned(),
                    why: "not a sled location",
                }));
            }
        };
        let db = tokio::task::spawn_blocking(move || {
            check_directory(&dir)?;
            sled::Config::new()
                .path(&dir)
                .open()
                .map_err(OpenError::backend)
        })
        .await
        .map_err(OpenError::backend)??;
        let trees = Trees::open(&db)?;
        search::index_old_messages(&db, &trees)?;
        let writer = Writer::spawn(db.clone(), trees.clone(), durability)?;
        Ok(Self { db, trees, writer })
    }

    /// Flushes everything to disk (writes are already flushed with [`Durability::Flushed`]).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.db.flush_async().await.map(drop).map_err(backend)
    }

    /// A write that reads and changes single records (see `tx::Writer::write`).
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&Tx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// A write that first scans committed data (see `tx::Writer::write_scanning`).
    async fn write_scanning<P, T, S, A>(&self, scan: S, apply: A) -> StoreResult<T>
    where
        P: Send + 'static,
        T: Send + 'static,
        S: FnOnce(&Trees) -> StoreResult<P> + Send + 'static,
        A: Fn(&Tx<'_>, &P) -> StoreResult<T> + Send + 'static,
    {
        self.writer.write_scanning(scan, apply).await
    }
}
