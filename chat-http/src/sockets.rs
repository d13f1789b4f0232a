//! The live WebSockets, by user and login: who is online, and closing sockets on logout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use chat_core::{SessionId, UserId};
use tokio::sync::watch;

type Open = HashMap<UserId, Vec<(u64, Option<SessionId>, watch::Sender<bool>)>>;

/// The open sockets by user. Each has a close signal that logout and account changes fire.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    next: AtomicU64,
    count: AtomicUsize,
    open: Mutex<Open>,
}

/// A socket's registration; deregisters when dropped.
pub(crate) struct Registration<'a> {
    sockets: &'a Sockets,
    user: UserId,
    id: u64,
    /// Becomes `true` when the socket must close.
    pub(crate) closed: watch::Receiver<bool>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut open = self.sockets.lock();
        if let Some(list) = open.get_mut(&self.user) {
            list.retain(|(id, _, _)| *id != self.id);
            if list.is_empty() {
                open.remove(&self.user);
            }
        }
        self.sockets.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Sockets {
    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn register(&self, user: UserId, session: Option<SessionId>) -> Registration<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (close, closed) = watch::channel(false);
        self.lock()
            .entry(user)
            .or_default()
            .push((id, session, close));
        self.count.fetch_add(1, Ordering::Relaxed);
        Registration {
            sockets: self,
            user,
            id,
            closed,
        }
    }

    /// Whether the user has a live socket.
    pub(crate) fn is_online(&self, user: UserId) -> bool {
        self.lock().contains_key(&user)
    }

    /// How many sockets are open.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Closes the user's sockets of one login, or all of them with `None`.
    pub(crate) fn close(&self, user: UserId, session: Option<SessionId>) {
        if let Some(list) = self.lock().get(&user) {
            for (_, s, close) in list {
                if session.is_none() || *s == session {
                    let _ = close.send(true);
                }
            }
        }
    }
}
