//! How many WebSockets this server holds open, for `/metrics`. Who is online, and closing a
//! login's sockets, come from `chat-core` (the store and the bus), so that every server agrees.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The count of open sockets.
#[derive(Debug, Default)]
pub(crate) struct Sockets {
    count: AtomicUsize,
}

/// One open socket; counted until dropped.
pub(crate) struct Open<'a>(&'a Sockets);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.count.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Sockets {
    pub(crate) fn open(&self) -> Open<'_> {
        self.count.fetch_add(1, Ordering::Relaxed);
        Open(self)
    }

    /// How many sockets are open.
    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}
