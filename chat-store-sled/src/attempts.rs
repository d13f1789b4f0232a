//! Attempt counters (the failed-login lockout).

use async_trait::async_trait;
use chat_core::store::{Attempt, AttemptStore};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::SledStore;
use crate::codec::{StoreResult, backend, decode, tx_read, tx_write};
use crate::tx::Kind;

/// A key's open window.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Window {
    count: u32,
    ends: DateTime<Utc>,
}

crate::records::own_record!(Window);

#[async_trait]
impl AttemptStore for SledStore {
    async fn count_attempt(&self, attempt: Attempt) -> StoreResult<Option<DateTime<Utc>>> {
        self.write(move |tx| {
            let open = tx_read::<Window>(tx, Kind::Attempts, &attempt.key)?
                .filter(|w| w.ends > attempt.at);
            let window = match open {
                Some(window) if window.count >= attempt.allowed => return Ok(Some(window.ends)),
                Some(window) => Window {
                    count: window.count + 1,
                    ..window
                },
                None => Window {
                    count: 1,
                    ends: attempt.window_end,
                },
            };
            tx_write(tx, Kind::Attempts, &attempt.key, &window)?;
            Ok(None)
        })
        .await
    }

    async fn clear_attempts(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |tx| tx.remove(Kind::Attempts, &key).map(drop))
            .await
    }

    async fn purge_attempts(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write_scanning(
            move |trees| {
                let mut ended = Vec::new();
                for entry in trees.tree(Kind::Attempts).iter() {
                    let (key, value) = entry.map_err(backend)?;
                    if decode::<Window>(&value)?.ends < now {
                        ended.push(key);
                    }
                }
                Ok(ended)
            },
            |tx, ended| {
                for key in ended {
                    tx.remove(Kind::Attempts, key)?;
                }
                Ok(ended.len() as u64)
            },
        )
        .await
    }
}
