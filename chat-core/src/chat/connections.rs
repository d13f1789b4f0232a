//! Live connections in the store: `online` as every engine sees it.
//!
//! Each engine is a node with an id. A subscription records a connection of its user under the
//! node, with an expiry; while the node has connections, one heartbeat task renews all of them
//! at once every third of [`ChatConfig::connection_ttl`](crate::ChatConfig::connection_ttl). A
//! process that dies stops renewing, so its users stop counting as online within that time.
//!
//! A user's first connection and their last one's closing are announced to their rooms
//! (`status.updated`), as a hint: two connections opening and closing at once on two engines
//! may announce out of order, and what a client reads (`online` on users) is the truth.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::expiry;
use crate::clock::Clock;
use crate::config::ChatConfig;
use crate::error::Result;
use crate::events::{Event, EventBus};
use crate::ids::{ConnectionId, NodeId, UserId};
use crate::store::RoomQuery;
use crate::store::{Connection, Store};

/// This engine, as the holder of connections.
pub(crate) struct Node {
    id: NodeId,
    ttl: Duration,
    presence_max_members: u32,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    bus: Arc<dyn EventBus>,
    state: Mutex<NodeState>,
}

#[derive(Default)]
struct NodeState {
    /// Open connections.
    live: usize,
    /// Open connections per user: a user with one here is online without asking the store.
    users: HashMap<UserId, usize>,
    /// Whether the heartbeat task runs.
    beating: bool,
}

impl Node {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        bus: Arc<dyn EventBus>,
        config: &ChatConfig,
    ) -> Arc<Self> {
        Arc::new(Self {
            id: NodeId(uuid::Uuid::now_v7()),
            ttl: config.connection_ttl,
            presence_max_members: config.presence_max_members,
            store,
            clock,
            bus,
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, NodeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a connection of `user`, held until the lease is closed or dropped; a user who
    /// was offline is announced online.
    pub(crate) async fn connect(self: &Arc<Self>, user: UserId) -> Result<Lease> {
        let now = self.clock.now();
        let here = self.lock().users.get(&user).is_some_and(|&open| open > 0);
        let was_online = here || !self.store.online_users(&[user], now).await?.is_empty();
        let connection = Connection {
            id: ConnectionId(uuid::Uuid::now_v7()),
            node: self.id,
            user_id: user,
            expires_at: expiry(now, self.ttl),
        };
        self.store.open_connection(&connection).await?;
        if !was_online {
            self.announce_quietly(user).await;
        }
        let mut state = self.lock();
        state.live += 1;
        *state.users.entry(user).or_default() += 1;
        if !state.beating {
            state.beating = true;
            tokio::spawn(Arc::clone(self).heartbeat());
        }
        Ok(Lease {
            node: Arc::clone(self),
            id: connection.id,
            user,
            open: true,
        })
    }

    /// Publishes a user's presence (their status, and whether the store has a connection of
    /// theirs now) in each of their rooms of at most `presence_max_members` members.
    pub(crate) async fn announce(&self, user: UserId) -> Result<()> {
        let Some(user) = self.store.user(user).await? else {
            return Ok(());
        };
        let now = self.clock.now();
        let online = !self.store.online_users(&[user.id], now).await?.is_empty();
        for (room, _) in self.store.rooms_of_user(user.id, &RoomQuery::ALL).await? {
            if room.member_count > self.presence_max_members {
                continue;
            }
            self.bus.publish(Arc::new(Event::StatusUpdated {
                room_id: room.id,
                user_id: user.id,
                status: user.status,
                status_message: user.status_message.clone(),
                online,
            }));
        }
        Ok(())
    }

    /// [`Node::announce`] where failing must not fail anything else: a missed announcement
    /// leaves `online` reads right.
    async fn announce_quietly(&self, user: UserId) {
        if let Err(error) = self.announce(user).await {
            tracing::warn!(%error, "could not announce a change of presence");
        }
    }

    /// Deletes a connection (counted out by [`Node::detach`]); its user, if that was their
    /// last one anywhere, is announced offline.
    async fn disconnect(&self, id: ConnectionId, user: UserId, others_here: bool) {
        if let Err(error) = self.store.close_connection(id).await {
            tracing::warn!(%error, "could not delete a closed connection; it will expire");
            return;
        }
        if others_here {
            return;
        }
        match self.store.online_users(&[user], self.clock.now()).await {
            Ok(online) if online.is_empty() => self.announce_quietly(user).await,
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not announce a change of presence"),
        }
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

    /// Counts a connection of `user` out; whether the user has others on this node.
    fn detach(&self, user: UserId) -> bool {
        let mut state = self.lock();
        state.live = state.live.saturating_sub(1);
        match state.users.entry(user) {
            Entry::Occupied(mut open) if *open.get() > 1 => {
                *open.get_mut() -= 1;
                true
            }
            Entry::Occupied(open) => {
                open.remove();
                false
            }
            Entry::Vacant(_) => false,
        }
    }
}

/// One connection of this node; closing or dropping it deletes it from the store.
pub(crate) struct Lease {
    node: Arc<Node>,
    id: ConnectionId,
    user: UserId,
    open: bool,
}

impl Lease {
    /// Deletes the connection and waits until it is gone (and announced).
    pub(crate) async fn close(mut self) {
        self.open = false;
        let others_here = self.node.detach(self.user);
        self.node.disconnect(self.id, self.user, others_here).await;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        let others_here = self.node.detach(self.user);
        // Dropping cannot wait: delete in the background (if the runtime is gone, the record
        // expires by itself).
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (node, id, user) = (Arc::clone(&self.node), self.id, self.user);
            runtime.spawn(async move { node.disconnect(id, user, others_here).await });
        }
    }
}
