//! # chat-store-postgres
//!
//! The PostgreSQL store of [`chat_core`]: every storage trait over one database that several
//! engines (several `chat-server` processes) share.
//!
//! - **Ordering by row locks.** An append takes the room's next sequence number and change
//!   cursor by updating the room's row in the same statement that inserts the message, so the
//!   row lock orders appends per room and numbers stay gapless with any number of writers.
//!   Joins, departures and ownership changes lock the room's row too; a direct pair is unique by
//!   its key, so two engines starting the same conversation get one room.
//! - **Counts stay O(1).** The unread count is `last_seq - last_read_seq` of two rows; pages
//!   are keyset range scans of primary keys and indexes.
//! - **Schema.** Numbered migrations in `migrations/`, applied on open, in the database's
//!   default schema or in the one [`PostgresOptions::schema`] names (created when missing). A
//!   schema newer than this code is refused with [`OpenError::Incompatible`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use chat_core::Chat;
//! use chat_store_postgres::PostgresStore;
//!
//! let store = PostgresStore::open("postgres://chat@127.0.0.1:5432/chat").await?;
//! let chat = Chat::new(Arc::new(store));
//! # Ok(()) }
//! ```

mod appender;
mod bus;
mod codec;
mod import;
mod messages;
mod reactions;
mod rooms;
mod shared;
#[cfg(feature = "testing")]
pub mod testing;
mod threads;
mod users;

use std::str::FromStr;
use std::time::Duration;

pub use crate::bus::{DEFAULT_CHANNEL, PostgresBus};
use chat_core::store::{BadLocation, Location};
pub use chat_core::{OpenError, StoreError};
pub use sqlx;
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool};

static MIGRATOR: Migrator = sqlx::migrate!();

/// Where and how to open a store.
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The connection URL, `postgres://USER@HOST:PORT/DB`.
    pub url: String,
    /// The most connections the pool opens (default 16).
    pub pool_size: u32,
    /// A schema to keep the chat's tables in, created when missing; `None` for the
    /// connection's default (`public`). Letters, digits and `_` only.
    pub schema: Option<String>,
    /// How long a request waits for a pooled connection before it fails (default 5 s).
    pub acquire_timeout: Duration,
}

impl PostgresOptions {
    /// Options for a `postgres://` or `postgresql://` URL, read by [`Location`], with default
    /// settings.
    pub fn new(location: &str) -> Result<Self, OpenError> {
        match location.parse::<Location>()? {
            Location::Postgres(url) => Ok(Self {
                url,
                pool_size: 16,
                schema: None,
                acquire_timeout: Duration::from_secs(5),
            }),
            _ => Err(OpenError::BadLocation(BadLocation {
                url: location.to_owned(),
                why: "not a PostgreSQL location",
            })),
        }
    }

    /// Sets the pool size.
    pub fn pool_size(mut self, pool_size: u32) -> Self {
        self.pool_size = pool_size.max(1);
        self
    }

    /// Keeps the tables in `schema`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

/// Every chat-core storage trait over one PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
    appender: std::sync::Arc<appender::Appender>,
}

impl PostgresStore {
    /// Opens the database at a `postgres://` URL with default settings and migrates it.
    pub async fn open(location: &str) -> Result<Self, OpenError> {
        Self::open_with(PostgresOptions::new(location)?).await
    }

    /// Opens the database with the given options and migrates it. Its connections are named
    /// `chat-engine` (`chat-engine/SCHEMA` with a schema) in `pg_stat_activity`.
    ///
    /// Errors: [`OpenError::BadLocation`] for a URL or schema name that cannot be used;
    /// [`OpenError::Incompatible`] when the schema is newer than this code;
    /// [`OpenError::Backend`] when the database does not answer.
    pub async fn open_with(options: PostgresOptions) -> Result<Self, OpenError> {
        let bad = |why| {
            OpenError::BadLocation(BadLocation {
                url: options.url.clone(),
                why,
            })
        };
        let mut connect = PgConnectOptions::from_str(&options.url)
            .map_err(|_| bad("not a PostgreSQL connection URL"))?;
        if let Some(schema) = &options.schema {
            let plain = !schema.is_empty()
                && schema.len() <= 63
                && schema
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !plain {
                return Err(bad("a schema name is letters, digits and '_'"));
            }
            let mut admin = sqlx::PgConnection::connect_with(&connect)
                .await
                .map_err(OpenError::backend)?;
            // The name was checked to be plain above.
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "CREATE SCHEMA IF NOT EXISTS \"{schema}\""
            )))
            .execute(&mut admin)
            .await
            .map_err(OpenError::backend)?;
            admin.close().await.map_err(OpenError::backend)?;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        // Operators (and tests) find a chat's connections in pg_stat_activity by this name.
        let application = match &options.schema {
            Some(schema) => format!("chat-engine/{schema}"),
            None => "chat-engine".to_owned(),
        };
        connect = connect.application_name(&application);
        let pool = PgPoolOptions::new()
            .max_connections(options.pool_size.max(1))
            .min_connections(0)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(OpenError::backend)?;
        let mut c = pool.acquire().await.map_err(OpenError::backend)?;
        // `run_direct` rather than `run`: the latter's future is not `Send` for every lifetime,
        // which a `dyn Store` opener needs. It takes PostgreSQL's migration lock, so engines
        // starting at once migrate one after the other.
        MIGRATOR
            .run_direct(None, &mut *c, false)
            .await
            .map_err(|error| match error {
                MigrateError::VersionMissing(version) => OpenError::Incompatible(format!(
                    "schema version {version} is newer than this code knows"
                )),
                other => OpenError::backend(other),
            })?;
        index_old_messages(&mut c).await?;
        drop(c);
        // A quarter of the pool writes appends; the rest serves reads and other writes.
        let shards = (options.pool_size as usize / 4).clamp(1, 8);
        let appender = std::sync::Arc::new(appender::Appender::spawn(&pool, shards));
        Ok(Self { pool, appender })
    }
}

/// Indexes for search the live messages written before migration 4, a thousand at a time
/// (their terms are computed here, as the store computes every message's). Engines opening at
/// once may index the same rows: each writes the same terms.
async fn index_old_messages(c: &mut sqlx::PgConnection) -> Result<(), OpenError> {
    loop {
        let rows: Vec<(uuid::Uuid, i64, String)> = sqlx::query_as(
            "SELECT room_id, seq, body FROM messages \
             WHERE search_terms IS NULL AND deleted_at IS NULL LIMIT 1000",
        )
        .fetch_all(&mut *c)
        .await
        .map_err(OpenError::backend)?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut rooms = Vec::with_capacity(rows.len());
        let mut seqs = Vec::with_capacity(rows.len());
        let mut terms = Vec::with_capacity(rows.len());
        for (room, seq, body) in rows {
            rooms.push(room);
            seqs.push(seq);
            terms.push(chat_core::search::terms(&body).join(" "));
        }
        sqlx::query(
            "UPDATE messages AS m \
             SET search_terms = array_to_tsvector(string_to_array(t.terms, ' ')) \
             FROM unnest($1::uuid[], $2::bigint[], $3::text[]) AS t (room_id, seq, terms) \
             WHERE m.room_id = t.room_id AND m.seq = t.seq",
        )
        .bind(rooms)
        .bind(seqs)
        .bind(terms)
        .execute(&mut *c)
        .await
        .map_err(OpenError::backend)?;
    }
}

impl PostgresStore {
    /// The connection pool, for health checks and the event bus.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    /// Closes the pool once the connections in use come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The row `sql` finds with one bound value, read by `decode`.
    pub(crate) async fn row_where<'q, T, R>(
        &self,
        sql: &'static str,
        value: T,
        decode: fn(&sqlx::postgres::PgRow) -> Result<R, StoreError>,
    ) -> Result<Option<R>, StoreError>
    where
        T: 'q + Send + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        sqlx::query(sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(codec::map_err)?
            .map(|row| decode(&row))
            .transpose()
    }

    /// Runs `sql` with one bound value; how many rows it touched.
    pub(crate) async fn execute_with<'q, T>(
        &self,
        sql: &'static str,
        value: T,
    ) -> Result<u64, StoreError>
    where
        T: 'q + Send + sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
    {
        let done = sqlx::query(sql)
            .bind(value)
            .execute(&self.pool)
            .await
            .map_err(codec::map_err)?;
        Ok(done.rows_affected())
    }

    /// Deletes what expired before `now` with one `DELETE … WHERE <time column> < $1`; how many
    /// rows went.
    pub(crate) async fn purge(
        &self,
        sql: &'static str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(sql)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(codec::map_err)?;
        Ok(done.rows_affected())
    }
}
