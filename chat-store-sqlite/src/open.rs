//! Opening a database: refuse what is not ours before writing anything, then migrate.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use chat_core::OpenError;
use chat_core::store::{room_search_text, user_search_text};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection, SqlitePool};
use uuid::Uuid;

use crate::codec::{self, room_columns};
use crate::search::{index_new, last_search_row};
use crate::{Durability, SqliteOptions};

static MIGRATOR: Migrator = sqlx::migrate!();

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

fn incompatible(path: &Path, why: impl std::fmt::Display) -> OpenError {
    OpenError::Incompatible(format!("{}: {why}", path.display()))
}

fn newest_known_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// The writer connection (migrated) and the reader pool.
pub(crate) async fn open(
    options: &SqliteOptions,
) -> Result<(SqliteConnection, SqlitePool), OpenError> {
    let path = options.path.as_path();
    if path.exists() {
        check_existing(path).await?;
    }
    let base = SqliteConnectOptions::new()
        .filename(path)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        .synchronous(match options.durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        });
    let mut writer = base
        .clone()
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .connect()
        .await
        .map_err(OpenError::backend)?;
    // `run_direct` rather than `run`: the latter's future is not `Send` for every lifetime
    // (sqlx's "Acquire is not general enough"), which a `dyn Store` opener needs.
    MIGRATOR
        .run_direct(None, &mut writer, false)
        .await
        .map_err(|error| match error {
            MigrateError::VersionMissing(version) => incompatible(
                path,
                format!("schema version {version} is newer than this code knows"),
            ),
            other => OpenError::backend(other),
        })?;
    fold_old_rows(&mut writer).await?;
    index_old_messages(&mut writer).await?;
    let readers = SqlitePoolOptions::new()
        .max_connections(options.readers.max(1))
        .min_connections(0)
        .connect_with(base.read_only(true))
        .await
        .map_err(OpenError::backend)?;
    Ok((writer, readers))
}

/// Fills the folded `search` column of rows written before migration 3, which SQL cannot fold.
async fn fold_old_rows(c: &mut SqliteConnection) -> Result<(), OpenError> {
    let mut tx = c.begin().await.map_err(OpenError::backend)?;
    let sql = concat!(
        "SELECT ",
        room_columns!(),
        " FROM rooms r WHERE r.search IS NULL"
    );
    for row in sqlx::query(sql)
        .fetch_all(&mut *tx)
        .await
        .map_err(OpenError::backend)?
    {
        let room = codec::room(&row)?;
        sqlx::query("UPDATE rooms SET search = ? WHERE id = ?")
            .bind(room_search_text(&room))
            .bind(room.id.0)
            .execute(&mut *tx)
            .await
            .map_err(OpenError::backend)?;
    }
    let users = sqlx::query("SELECT id, username, display_name FROM users WHERE search IS NULL")
        .fetch_all(&mut *tx)
        .await
        .map_err(OpenError::backend)?;
    for row in users {
        let id: Uuid = row.try_get(0).map_err(OpenError::backend)?;
        let username: String = row.try_get(1).map_err(OpenError::backend)?;
        let display_name: String = row.try_get(2).map_err(OpenError::backend)?;
        sqlx::query("UPDATE users SET search = ? WHERE id = ?")
            .bind(user_search_text(&username, &display_name))
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(OpenError::backend)?;
    }
    tx.commit().await.map_err(OpenError::backend)
}

/// Gives search rows to the messages written before migration 8 (those without one), in id
/// order (ids grow with time, and the index reads newest first), in keyset pages so that
/// memory stays flat; then indexes every message the index lacks (those, and those a crash
/// kept from it).
async fn index_old_messages(c: &mut SqliteConnection) -> Result<(), OpenError> {
    let mut tx = c.begin().await.map_err(OpenError::backend)?;
    let mut next: i64 = sqlx::query_scalar(concat!("SELECT ", last_search_row!()))
        .fetch_one(&mut *tx)
        .await
        .map_err(OpenError::backend)?;
    loop {
        let ids: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM messages WHERE search_row IS NULL ORDER BY id LIMIT 10000",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(OpenError::backend)?;
        if ids.is_empty() {
            break;
        }
        for id in ids {
            next += 1;
            for sql in [
                "UPDATE messages SET search_row = ?1 WHERE id = ?2",
                "INSERT INTO search_rows (search_row, room_id, seq) \
                 SELECT ?1, room_id, seq FROM messages WHERE id = ?2",
            ] {
                sqlx::query(sql)
                    .bind(next)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(OpenError::backend)?;
            }
        }
    }
    index_new(&mut tx).await?;
    tx.commit().await.map_err(OpenError::backend)
}

/// Refuses a file that is not a SQLite database, a SQLite database of something else, or a chat
/// database newer than this code, reading it only.
async fn check_existing(path: &Path) -> Result<(), OpenError> {
    let mut header = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|file| file.take(16).read_to_end(&mut header))
        .map_err(OpenError::backend)?;
    if header.is_empty() {
        return Ok(());
    }
    if header.as_slice() != SQLITE_HEADER {
        return Err(incompatible(path, "not a SQLite database"));
    }
    let mut connection = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .connect()
        .await
        .map_err(|e| incompatible(path, format!("cannot be read: {e}")))?;
    let result = check_schema(path, &mut connection).await;
    let _ = connection.close().await;
    result
}

async fn check_schema(path: &Path, connection: &mut SqliteConnection) -> Result<(), OpenError> {
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_schema WHERE type = 'table'")
            .fetch_all(&mut *connection)
            .await
            .map_err(|e| incompatible(path, format!("cannot be read: {e}")))?;
    if tables.is_empty() {
        return Ok(());
    }
    if !tables.iter().any(|t| t == "chat_meta") {
        return Err(incompatible(path, "not a chat database"));
    }
    let application: Option<String> =
        sqlx::query_scalar("SELECT value FROM chat_meta WHERE key = 'application'")
            .fetch_optional(&mut *connection)
            .await
            .map_err(OpenError::backend)?;
    if application.as_deref() != Some("chat-engine") {
        return Err(incompatible(path, "not a chat database"));
    }
    let newest: i64 = sqlx::query("SELECT coalesce(max(version), 0) AS v FROM _sqlx_migrations")
        .fetch_one(&mut *connection)
        .await
        .and_then(|row| row.try_get("v"))
        .map_err(OpenError::backend)?;
    if newest > newest_known_version() {
        return Err(incompatible(
            path,
            format!("schema version {newest} is newer than this code knows"),
        ));
    }
    Ok(())
}
