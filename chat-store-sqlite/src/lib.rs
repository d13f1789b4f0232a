//! # chat-store-sqlite
//!
//! The SQLite store of [`chat_core`]: one embedded file, WAL mode, every storage trait.
//!
//! - **One writer, group commit.** Every write runs on one connection in a `BEGIN IMMEDIATE`
//!   transaction, so concurrent writers never see "database is locked". Writes that arrive while
//!   a transaction is being written queue up and are committed together in the next one; each
//!   is acknowledged only after the transaction holding it committed. Reads use a pool of
//!   read-only connections and never wait for the writer.
//! - **Durability.** [`Durability::Full`] (the default) syncs the WAL on every commit: an
//!   acknowledged write survives a crash of the process and of the machine.
//!   [`Durability::Normal`] syncs only at checkpoints: an acknowledged write survives a crash of
//!   the process, but the last transactions may be lost if the machine loses power.
//! - **Search.** An FTS5 index of each live message's terms ([`chat_core::search::terms`]),
//!   kept behind the sends: every 1024th message, a read connection reads and splits the
//!   messages sent since and the writer indexes them together (FTS5 writes a segment per
//!   commit that changes it, too much for each send), and search reads the bodies of those not
//!   indexed yet besides the index. Edits and deletions of indexed messages reach the index in
//!   the transaction that makes them.
//! - **Schema.** Numbered migrations in `migrations/`, applied on open. A file that is not a
//!   chat database, or whose schema is newer than this code, is refused with
//!   [`OpenError::Incompatible`] before anything is written to it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use chat_core::Chat;
//! use chat_store_sqlite::SqliteStore;
//!
//! let store = SqliteStore::open("sqlite://chat.db").await?;
//! let chat = Chat::new(Arc::new(store));
//! # Ok(()) }
//! ```

mod attempts;
mod codec;
mod connections;
mod import;
mod messages;
mod open;
mod reactions;
mod rooms;
mod search;
mod threads;
mod users;
mod writer;

use std::path::PathBuf;

use chat_core::store::{BadLocation, Location};
pub use chat_core::{OpenError, StoreError};
pub use sqlx;
use sqlx::SqlitePool;

use crate::writer::Writer;

/// How much an acknowledged write survives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is synced on every commit; nothing acknowledged is lost, even
    /// on power loss.
    #[default]
    Full,
    /// `synchronous=NORMAL`: synced at checkpoints only; a process crash loses nothing, a power
    /// loss may lose the most recent commits.
    Normal,
}

/// Where and how to open a store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file; created when missing.
    pub path: PathBuf,
    /// The durability of acknowledged writes (default [`Durability::Full`]).
    pub durability: Durability,
    /// How many read-only connections serve reads (default 4).
    pub readers: u32,
}

impl SqliteOptions {
    /// Options for a file path or a `sqlite://` URL (`sqlite://chat.db`,
    /// `sqlite:///var/lib/chat.db`), read by [`Location`], with default settings.
    pub fn new(location: &str) -> Result<Self, OpenError> {
        match location.parse::<Location>()? {
            Location::Sqlite(path) => Ok(Self::at(path)),
            _ => Err(OpenError::BadLocation(BadLocation {
                url: location.to_owned(),
                why: "not a SQLite location",
            })),
        }
    }

    /// Options for the database file at `path`, with default settings.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            durability: Durability::default(),
            readers: 4,
        }
    }

    /// Sets the durability.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }
}

/// Every chat-core storage trait over one SQLite file.
#[derive(Debug)]
pub struct SqliteStore {
    readers: SqlitePool,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (or creates) the database at a path or `sqlite://` URL with default settings.
    pub async fn open(location: &str) -> Result<Self, OpenError> {
        Self::open_with(SqliteOptions::new(location)?).await
    }

    /// Opens (or creates) the database with the given options.
    ///
    /// Errors: [`OpenError::Incompatible`] when the file is not a chat database or its schema
    /// is newer than this code; the file is then left untouched.
    pub async fn open_with(options: SqliteOptions) -> Result<Self, OpenError> {
        let (writer, readers) = open::open(&options).await?;
        Ok(Self {
            writer: Writer::spawn(writer, readers.clone()),
            readers,
        })
    }

    /// Deletes what expired before `now` with one `DELETE … WHERE <time column> < ?`; how many
    /// rows went.
    pub(crate) async fn purge(
        &self,
        sql: &'static str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        self.writer
            .write_one_statement(move |c| {
                Box::pin(async move {
                    let done = sqlx::query(sql)
                        .bind(codec::micros(now))
                        .execute(c)
                        .await
                        .map_err(codec::map_err)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }

    /// Catches the search index up and closes the read connections. Writes already
    /// acknowledged are on disk; the writer closes once the store is dropped.
    pub async fn close(self) {
        let caught_up = self.writer.write(|c| Box::pin(search::index_new(c))).await;
        if let Err(error) = caught_up {
            tracing::error!(%error, "the search index could not catch up before closing");
        }
        self.readers.close().await;
    }
}
