//! Live connections in the store: `online` as every engine sees it.
//!
//! Each engine is a node with an id. A subscription records a connection of its user under the
//! node, with an expiry; while the node has connections, one heartbeat task renews all of them
//! at once every third of [`ChatConfig::connection_ttl`](crate::ChatConfig::connection_ttl). A
//! process that dies stops renewing, so its users stop counting as online within that time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::expiry;
use crate::clock::Clock;
use crate::error::Result;
use crate::ids::{ConnectionId, NodeId, UserId};
use crate::store::{Connection, Store};

/// This engine, as the holder of connections.
pub(crate) struct Node {
    id: NodeId,
    ttl: Duration,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    state: Mutex<NodeState>,
}

#[derive(Default)]
struct NodeState {
    /// Open connections.
    live: usize,
    /// Whether the heartbeat task runs.
    beating: bool,
}

impl Node {
    pub(crate) fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, ttl: Duration) -> Arc<Self> {
        Arc::new(Self {
            id: NodeId(uuid::Uuid::now_v7()),
            ttl,
            store,
            clock,
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a connection of `user`, held until the lease is closed or dropped.
    pub(crate) async fn connect(self: &Arc<Self>, user: UserId) -> Result<Lease> {
        let connection = Connection {
            id: ConnectionId(uuid::Uuid::now_v7()),
            node: self.id,
            user_id: user,
            expires_at: expiry(self.clock.now(), self.ttl),
        };
        self.store.open_connection(&connection).await?;
        let mut state = self.lock();
        state.live += 1;
        if !state.beating {
            state.beating = true;
            tokio::spawn(Arc::clone(self).heartbeat());
        }
        Ok(Lease {
            node: Arc::clone(self),
            id: connection.id,
            open: true,
        })
    }

    /// Renews the node's connections until it has none.
    async fn heartbeat(self: Arc<Self>) {
        let period = (self.ttl / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(period).await;
            {
                let mut state = self.lock();
                if state.live == 0 {
                    state.beating = false;
                    return;
                }
            }
            let expires_at = expiry(self.clock.now(), self.ttl);
            if let Err(error) = self.store.renew_connections(self.id, expires_at).await {
                tracing::warn!(%error, "could not renew this node's connections");
            }
        }
    }

    fn detach(&self) {
        let mut state = self.lock();
        state.live = state.live.saturating_sub(1);
    }
}

/// One connection of this node; closing or dropping it deletes it from the store.
pub(crate) struct Lease {
    node: Arc<Node>,
    id: ConnectionId,
    open: bool,
}

impl Lease {
    /// Deletes the connection and waits until it is gone.
    pub(crate) async fn close(mut self) {
        self.open = false;
        self.node.detach();
        if let Err(error) = self.node.store.close_connection(self.id).await {
            tracing::warn!(%error, "could not delete a closed connection; it will expire");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        self.node.detach();
        // Dropping cannot wait: delete in the background (if the runtime is gone, the record
        // expires by itself).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (store, id) = (Arc::clone(&self.node.store), self.id);
            runtime.spawn(async move {
                if let Err(error) = store.close_connection(id).await {
                    tracing::warn!(%error, "could not delete a closed connection; it will expire");
                }
            });
        }
    }
}
