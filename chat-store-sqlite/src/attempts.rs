//! Attempt counters (the failed-login lockout), shared by every engine on the file.

use async_trait::async_trait;
use chat_core::store::{Attempt, AttemptStore};
use chrono::{DateTime, Utc};
use sqlx::Row;

use crate::SqliteStore;
use crate::codec::{StoreResult, map_err, micros, time};

#[async_trait]
impl AttemptStore for SqliteStore {
    async fn count_attempt(&self, attempt: Attempt) -> StoreResult<Option<DateTime<Utc>>> {
        // On the one writer: the read and the count cannot interleave with another attempt.
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let open = sqlx::query("SELECT count, window_end FROM attempts WHERE key = ?")
                        .bind(&attempt.key)
                        .fetch_optional(&mut *c)
                        .await
                        .map_err(map_err)?
                        .map(|row| -> StoreResult<(i64, i64)> {
                            Ok((
                                row.try_get("count").map_err(map_err)?,
                                row.try_get("window_end").map_err(map_err)?,
                            ))
                        })
                        .transpose()?
                        .filter(|(_, end)| *end > micros(attempt.at));
                    match open {
                        Some((count, end)) if count >= i64::from(attempt.allowed) => {
                            Ok(Some(time(end)?))
                        }
                        Some(_) => {
                            sqlx::query("UPDATE attempts SET count = count + 1 WHERE key = ?")
                                .bind(&attempt.key)
                                .execute(&mut *c)
                                .await
                                .map_err(map_err)?;
                            Ok(None)
                        }
                        None => {
                            sqlx::query(
                                "INSERT OR REPLACE INTO attempts (key, count, window_end) \
                                 VALUES (?, 1, ?)",
                            )
                            .bind(&attempt.key)
                            .bind(micros(attempt.window_end))
                            .execute(&mut *c)
                            .await
                            .map_err(map_err)?;
                            Ok(None)
                        }
                    }
                })
            })
            .await
    }

    async fn clear_attempts(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.writer
            .write_one_statement(move |c| {
                Box::pin(async move {
                    sqlx::query("DELETE FROM attempts WHERE key = ?")
                        .bind(key)
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }

    async fn purge_attempts(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.purge("DELETE FROM attempts WHERE window_end < ?", now)
            .await
    }
}
