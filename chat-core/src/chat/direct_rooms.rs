//! Which room holds the direct conversation of two users, remembered so that a direct message
//! costs no store read before its append.
//!
//! Safe to keep per process because the answer never changes while the room exists (a pair
//! has one conversation, for good), and the append itself checks the room and the sender's
//! membership: an entry whose room was deleted gets `NotFound(Room)` from the append, and the
//! caller forgets it and asks the store.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use crate::ids::{RoomId, UserId};

/// Pairs remembered at most (about 50 bytes each).
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub(crate) struct DirectRooms {
    rooms: Mutex<HashMap<(UserId, UserId), RoomId>>,
}

impl DirectRooms {
    pub(crate) fn get(&self, a: UserId, b: UserId) -> Option<RoomId> {
        self.lock().get(&pair(a, b)).copied()
    }

    pub(crate) fn insert(&self, a: UserId, b: UserId, room: RoomId) {
        let mut rooms = self.lock();
        if rooms.len() >= CAPACITY {
            // Bounded without bookkeeping: pairs still in use come back on their next send.
            rooms.clear();
        }
        rooms.insert(pair(a, b), room);
    }

    pub(crate) fn forget(&self, a: UserId, b: UserId) {
        self.lock().remove(&pair(a, b));
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<(UserId, UserId), RoomId>> {
        // Nothing that can panic runs under the lock; recover the map rather than fail.
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The pair in one order, whoever sends.
fn pair(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b { (a, b) } else { (b, a) }
}
