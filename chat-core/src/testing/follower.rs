//! [`Follower`]: one room's messages as a client following a live feed sees them, for the cases
//! that check that engines deliver every message once and in order.

use std::time::Duration;

use crate::events::{Event, Subscription};
use crate::{Chat, RoomId, UserId};

/// Waits this long for each event before deciding that none is coming (a gap is filled from
/// the store after `gap_wait`, 100 ms in tests).
const PATIENCE: Duration = Duration::from_secs(5);

/// A client of one room: what it has seen of the room's messages, and where to catch up from.
///
/// It does what [`Subscription`] asks of a client. It takes the feed's messages in the order
/// given and, when the feed says [`Event::Resync`] (the bus dropped events, which any bus may
/// do), reads what it missed with [`Chat::changes`] from the last message it saw; the feed then
/// goes on from the room's newest message at its resync, so what it repeats of the catch-up is
/// skipped. Anything else the feed repeats, skips or reorders shows in [`Follower::seen`].
pub(crate) struct Follower<'a> {
    chat: &'a Chat,
    user: UserId,
    room: RoomId,
    seen: Vec<u64>,
    /// The change id of the last message seen: where a catch-up starts.
    cursor: u64,
    /// The newest message a catch-up read: the feed may deliver up to it again.
    caught_up: u64,
}

impl<'a> Follower<'a> {
    /// A client of `room`, as `user`, that has seen nothing yet; it catches up through `chat`.
    pub(crate) fn new(chat: &'a Chat, user: UserId, room: RoomId) -> Self {
        Self {
            chat,
            user,
            room,
            seen: Vec::new(),
            cursor: 0,
            caught_up: 0,
        }
    }

    /// The sequence numbers of the messages seen, in the order they were seen.
    pub(crate) fn seen(&self) -> &[u64] {
        &self.seen
    }

    fn last_seq(&self) -> u64 {
        self.seen.last().copied().unwrap_or(0)
    }

    /// Follows `feed` until the message numbered `through` has been seen.
    pub(crate) async fn follow(&mut self, feed: &mut Subscription, through: u64) {
        let mut resyncs = 0;
        while self.last_seq() < through {
            let event = tokio::time::timeout(PATIENCE, feed.recv())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no event for {PATIENCE:?} while waiting for message {through}; seen {:?} \
                         and {resyncs} resyncs",
                        self.seen
                    )
                })
                .expect("the feed goes on");
            match &*event {
                // What a catch-up already read, the feed may deliver again.
                Event::MessageCreated { message }
                    if message.room_id == self.room && message.seq > self.caught_up =>
                {
                    self.seen.push(message.seq);
                    self.cursor = message.change_id;
                }
                Event::Resync => {
                    resyncs += 1;
                    self.catch_up().await;
                }
                _ => {}
            }
        }
    }

    /// Reads the messages since the last one seen from the store, page by page, as a client
    /// that reconnects does.
    pub(crate) async fn catch_up(&mut self) {
        loop {
            let page = self
                .chat
                .changes(self.user, self.room, self.cursor, None)
                .await
                .expect("the room's changes");
            for message in &page.items {
                // Only creations here: the cases that follow rooms neither edit nor delete.
                self.seen.push(message.seq);
                self.cursor = message.change_id;
            }
            self.caught_up = self.caught_up.max(self.last_seq());
            match page.next_cursor {
                Some(next) => self.cursor = next,
                None => return,
            }
        }
    }
}
