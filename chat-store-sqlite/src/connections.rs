//! Live connections, for `online` as every engine on the file sees it.

use async_trait::async_trait;
use chat_core::store::{Connection, ConnectionStore};
use chat_core::{ConnectionId, NodeId, UserId};
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::SqliteStore;
use crate::codec::{StoreResult, map_err, micros};

impl SqliteStore {
    /// Runs one statement with one id and one time on the writer.
    async fn write_connections(
        &self,
        sql: &'static str,
        id: uuid::Uuid,
        at: Option<DateTime<Utc>>,
    ) -> StoreResult<u64> {
        self.writer
            .write_one_statement(move |c| {
                Box::pin(async move {
                    let mut query = sqlx::query(sql);
                    if let Some(at) = at {
                        query = query.bind(micros(at));
                    }
                    let done = query.bind(id).execute(c).await.map_err(map_err)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }
}

#[async_trait]
impl ConnectionStore for SqliteStore {
    async fn open_connection(&self, connection: &Connection) -> StoreResult<()> {
        let connection = connection.clone();
        self.writer
            .write_one_statement(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO connections (id, node, user_id, expires_at) \
                         VALUES (?, ?, ?, ?)",
                    )
                    .bind(connection.id.0)
                    .bind(connection.node.0)
                    .bind(connection.user_id.0)
                    .bind(micros(connection.expires_at))
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }

    async fn close_connection(&self, id: ConnectionId) -> StoreResult<()> {
        let sql = "DELETE FROM connections WHERE id = ?";
        self.write_connections(sql, id.0, None).await.map(drop)
    }

    async fn renew_connections(&self, node: NodeId, expires_at: DateTime<Utc>) -> StoreResult<()> {
        let sql = "UPDATE connections SET expires_at = ? WHERE node = ?";
        self.write_connections(sql, node.0, Some(expires_at))
            .await
            .map(drop)
    }

    async fn online_users(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<UserId>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        // The ids as one JSON array: one statement for any number of users.
        let ids = serde_json::to_string(
            &users
                .iter()
                .map(|u| u.0.simple().to_string())
                .collect::<Vec<_>>(),
        )
        .map_err(chat_core::StoreError::backend)?;
        let rows = sqlx::query(
            "SELECT DISTINCT user_id FROM connections \
             WHERE user_id IN (SELECT unhex(value) FROM json_each(?)) AND expires_at > ?",
        )
        .bind(ids)
        .bind(micros(now))
        .fetch_all(&self.readers)
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|row| Ok(UserId(row.try_get("user_id").map_err(map_err)?)))
            .collect()
    }

    async fn purge_connections(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.purge("DELETE FROM connections WHERE expires_at < ?", now)
            .await
    }
}
