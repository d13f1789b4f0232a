//! Live connections, for `online`.

use async_trait::async_trait;
use chat_core::store::{Connection, ConnectionStore};
use chat_core::{ConnectionId, NodeId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::SledStore;
use crate::codec::{StoreResult, backend, decode, pair, read, second, tx_read, tx_write};
use crate::tx::{Kind, Trees, Tx};

/// A connection as stored under its id.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    node: NodeId,
    user_id: UserId,
    expires_at: DateTime<Utc>,
}

crate::records::own_record!(Stored);

fn remove(tx: &Tx<'_>, id: uuid::Uuid, connection: &Stored) -> StoreResult<()> {
    tx.remove(Kind::Connections, id.as_bytes())?;
    tx.remove(
        Kind::ConnectionsByUser,
        pair(connection.user_id.0, id.as_bytes()),
    )?;
    tx.remove(
        Kind::ConnectionsByNode,
        pair(connection.node.0, id.as_bytes()),
    )?;
    Ok(())
}

/// The committed connections listed under `owner` in an index.
fn connections_under(
    trees: &Trees,
    index: Kind,
    owner: uuid::Uuid,
) -> StoreResult<Vec<(uuid::Uuid, Stored)>> {
    let mut found = Vec::new();
    for key in trees.tree(index).scan_prefix(owner.as_bytes()).keys() {
        let id = second(&key.map_err(backend)?)?;
        if let Some(connection) = read::<Stored>(trees, Kind::Connections, id.as_bytes())? {
            found.push((id, connection));
        }
    }
    Ok(found)
}

#[async_trait]
impl ConnectionStore for SledStore {
    async fn open_connection(&self, connection: &Connection) -> StoreResult<()> {
        let id = connection.id.0;
        let stored = Stored {
            node: connection.node,
            user_id: connection.user_id,
            expires_at: connection.expires_at,
        };
        self.write(move |tx| {
            tx_write(tx, Kind::Connections, id.as_bytes(), &stored)?;
            tx.insert(
                Kind::ConnectionsByUser,
                pair(stored.user_id.0, id.as_bytes()),
                &[],
            )?;
            tx.insert(
                Kind::ConnectionsByNode,
                pair(stored.node.0, id.as_bytes()),
                &[],
            )
        })
        .await
    }

    async fn close_connection(&self, id: ConnectionId) -> StoreResult<()> {
        let id = id.0;
        self.write(
            move |tx| match tx_read::<Stored>(tx, Kind::Connections, id.as_bytes())? {
                Some(connection) => remove(tx, id, &connection),
                None => Ok(()),
            },
        )
        .await
    }

    async fn renew_connections(&self, node: NodeId, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.write_scanning(
            move |trees| connections_under(trees, Kind::ConnectionsByNode, node.0),
            move |tx, connections| {
                for (id, connection) in connections {
                    let renewed = Stored {
                        expires_at,
                        ..connection.clone()
                    };
                    tx_write(tx, Kind::Connections, id.as_bytes(), &renewed)?;
                }
                Ok(())
            },
        )
        .await
    }

    async fn online_users(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<UserId>> {
        let mut online = Vec::new();
        for user in users {
            let connections = connections_under(&self.trees, Kind::ConnectionsByUser, user.0)?;
            if connections.iter().any(|(_, c)| c.expires_at > now) && !online.contains(user) {
                online.push(*user);
            }
        }
        Ok(online)
    }

    async fn purge_connections(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write_scanning(
            move |trees| {
                let mut expired = Vec::new();
                for entry in trees.tree(Kind::Connections).iter() {
                    let (id, value) = entry.map_err(backend)?;
                    let connection: Stored = decode(&value)?;
                    if connection.expires_at < now {
                        expired.push((crate::codec::uuid(&id)?, connection));
                    }
                }
                Ok(expired)
            },
            |tx, expired| {
                for (id, connection) in expired {
                    remove(tx, *id, connection)?;
                }
                Ok(expired.len() as u64)
            },
        )
        .await
    }
}
