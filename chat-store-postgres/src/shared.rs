//! What the engines on one database share besides the chat: attempt counters (the
//! failed-login lockout) and live connections (`online`).

use async_trait::async_trait;
use chat_core::store::{Attempt, AttemptStore, Connection, ConnectionStore};
use chat_core::{ConnectionId, NodeId, UserId};
use chrono::{DateTime, Utc};

use crate::PostgresStore;
use crate::codec::{StoreResult, get, map_err};

#[async_trait]
impl AttemptStore for PostgresStore {
    async fn count_attempt(&self, attempt: Attempt) -> StoreResult<Option<DateTime<Utc>>> {
        // One upsert: concurrent attempts on any engine each count once. A window that ended
        // starts again at 1; an open one counts on, refused attempts included.
        let row = sqlx::query(
            "INSERT INTO attempts (key, count, window_end) VALUES ($1, 1, $3) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN attempts.window_end <= $2 THEN 1 ELSE attempts.count + 1 END, \
               window_end = CASE WHEN attempts.window_end <= $2 THEN $3 \
                                 ELSE attempts.window_end END \
             RETURNING count, window_end",
        )
        .bind(&attempt.key)
        .bind(attempt.at)
        .bind(attempt.window_end)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let count: i64 = get(&row, "count")?;
        // The first attempt of a window always passes; after it, `allowed` of them do.
        let refused = count > 1 && count > i64::from(attempt.allowed);
        Ok(refused.then(|| get(&row, "window_end")).transpose()?)
    }

    async fn clear_attempts(&self, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM attempts WHERE key = $1")
            .bind(key)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn purge_attempts(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.purge("DELETE FROM attempts WHERE window_end < $1", now)
            .await
    }
}

#[async_trait]
impl ConnectionStore for PostgresStore {
    async fn open_connection(&self, connection: &Connection) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO connections (id, node, user_id, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(connection.id.0)
        .bind(connection.node.0)
        .bind(connection.user_id.0)
        .bind(connection.expires_at)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn close_connection(&self, id: ConnectionId) -> StoreResult<()> {
        sqlx::query("DELETE FROM connections WHERE id = $1")
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn renew_connections(&self, node: NodeId, expires_at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE connections SET expires_at = $1 WHERE node = $2")
            .bind(expires_at)
            .bind(node.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn online_users(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<UserId>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<uuid::Uuid> = users.iter().map(|user| user.0).collect();
        let online: Vec<uuid::Uuid> = sqlx::query_scalar(
            "SELECT DISTINCT user_id FROM connections \
             WHERE user_id = ANY($1) AND expires_at > $2",
        )
        .bind(ids)
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(online.into_iter().map(UserId).collect())
    }

    async fn purge_connections(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.purge("DELETE FROM connections WHERE expires_at < $1", now)
            .await
    }
}
