//! Typed identifiers and where new ones come from.

use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// Identifies a user.
    UserId
);
id_type!(
    /// Identifies a group room or a direct conversation.
    RoomId
);
id_type!(
    /// Identifies a message.
    MessageId
);
id_type!(
    /// Identifies one login (the chain of tokens that refreshing produces).
    SessionId
);
id_type!(
    /// Identifies one live connection (a [`Subscription`](crate::events::Subscription)), as
    /// recorded in the store for `online`.
    ConnectionId
);
id_type!(
    /// Identifies one running engine (one process, usually): the holder of connections, which
    /// renews them all at once.
    NodeId
);

/// Where new ids come from. The default is [`UuidV7`]; a test harness injects [`SequentialIds`]
/// to get the same ids on every run.
pub trait IdSource: Send + Sync + 'static {
    /// A new id, never returned before by this source.
    fn next_id(&self) -> Uuid;
}

/// Time-ordered random UUIDs (version 7): ids sort by creation time.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7;

impl IdSource for UuidV7 {
    fn next_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Deterministic ids `00000000-0000-0000-0000-000000000001`, `…02`, … for reproducible tests.
#[derive(Debug, Default)]
pub struct SequentialIds {
    last: AtomicU64,
}

impl SequentialIds {
    /// Starts at 1.
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdSource for SequentialIds {
    fn next_id(&self) -> Uuid {
        let n = self.last.fetch_add(1, Ordering::Relaxed) + 1;
        Uuid::from_u128(u128::from(n))
    }
}
