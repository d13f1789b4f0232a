//! Publishes each room's new messages in sequence order.
//!
//! Concurrent sends get their sequence numbers from the store in one order but return from it
//! in another, so publishing as each returns would let subscribers see #6 before #5. Each
//! room's new-message events wait here until every earlier number has been published.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::events::{Event, EventBus};
use crate::ids::RoomId;
use crate::message::Message;

/// Events held back at most, per room, before giving up on a missing number (a send whose
/// task died between the store and the bus) rather than holding the room's stream forever.
const MAX_HELD: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    rooms: Mutex<HashMap<RoomId, Cursor>>,
}

#[derive(Debug)]
struct Cursor {
    /// The next sequence number to publish.
    next: u64,
    held: BTreeMap<u64, Message>,
}

impl Sequencer {
    /// Called before appending to a room whose newest message was `last_seq` when read: any
    /// number appended from now on is above it, so publishing may start there.
    pub(crate) fn expect(&self, room: RoomId, last_seq: u64) {
        self.lock().entry(room).or_insert_with(|| Cursor {
            next: last_seq + 1,
            held: BTreeMap::new(),
        });
    }

    /// Publishes `message` once every earlier number of its room has been published.
    pub(crate) fn publish(&self, bus: &Arc<dyn EventBus>, message: Message) {
        let mut rooms = self.lock();
        let cursor = rooms.entry(message.room_id).or_insert_with(|| Cursor {
            next: message.seq,
            held: BTreeMap::new(),
        });
        if message.seq < cursor.next {
            bus.publish(Arc::new(Event::MessageCreated { message }));
            return;
        }
        cursor.held.insert(message.seq, message);
        while let Some(message) = cursor.held.remove(&cursor.next) {
            cursor.next += 1;
            bus.publish(Arc::new(Event::MessageCreated { message }));
        }
        if cursor.held.len() > MAX_HELD {
            tracing::warn!(
                held = cursor.held.len(),
                "a sequence number never arrived; skipping it"
            );
            for (seq, message) in std::mem::take(&mut cursor.held) {
                cursor.next = seq + 1;
                bus.publish(Arc::new(Event::MessageCreated { message }));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Cursor>> {
        self.rooms
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::InProcessBus;

    fn message(seq: u64) -> Message {
        Message {
            id: crate::MessageId(uuid::Uuid::from_u128(u128::from(seq))),
            room_id: RoomId(uuid::Uuid::from_u128(1)),
            seq,
            sender: crate::UserId(uuid::Uuid::from_u128(2)),
            body: format!("#{seq}"),
            reply_to: None,
            txn_id: None,
            metadata: None,
            created_at: chrono::DateTime::UNIX_EPOCH,
            edited_at: None,
            deleted_at: None,
            change_id: seq,
        }
    }

    #[test]
    fn messages_returning_out_of_order_are_published_in_order() {
        let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new(16));
        let mut receiver = bus.subscribe();
        let sequencer = Sequencer::default();
        sequencer.expect(RoomId(uuid::Uuid::from_u128(1)), 4);
        for seq in [6, 7, 5, 9, 8] {
            sequencer.publish(&bus, message(seq));
        }
        let published: Vec<u64> = std::iter::from_fn(|| receiver.try_recv().ok())
            .filter_map(|event| match &*event {
                Event::MessageCreated { message } => Some(message.seq),
                _ => None,
            })
            .collect();
        assert_eq!(published, [5, 6, 7, 8, 9]);
    }
}
