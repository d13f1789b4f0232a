//! Limits and settings of a [`Chat`](crate::Chat).

use crate::error::Field;
use std::time::Duration;

/// Limits and settings. [`ChatConfig::default`] is what a production server should use.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChatConfig {
    /// Longest message body, in characters (default 16 000).
    pub max_body_chars: usize,
    /// Largest message metadata, as serialized JSON bytes (default 8 KiB).
    pub max_metadata_bytes: usize,
    /// Longest client transaction id, in bytes (default 128).
    pub max_txn_id_bytes: usize,
    /// History page size when none is asked for (default 50).
    pub default_page_size: u32,
    /// Largest history or list page (default 200).
    pub max_page_size: u32,
    /// Largest room capacity a room may ask for (default 100 000).
    pub max_room_capacity: u32,
    /// Shortest password, in characters (default 8).
    pub min_password_chars: usize,
    /// How long an access token is accepted (default 1 hour).
    pub access_token_ttl: Duration,
    /// How long a refresh token is accepted (default 30 days).
    pub refresh_token_ttl: Duration,
    /// The cost of Argon2id password hashes.
    pub password_hashing: HashCost,
    /// Password hashes computed at once (default: the number of cores). Each holds
    /// `password_hashing.memory_kib` of memory while it runs; this bounds that memory.
    pub max_concurrent_hashes: usize,
    /// Hashing requests that may wait for a slot (default 32); beyond them, a request that
    /// needs a hash (login, register, a room password…) is refused at once with
    /// [`Error::RateLimited`](crate::Error::RateLimited).
    pub max_queued_hashes: usize,
    /// Failed logins allowed per account (username and email share one budget) within
    /// `failed_login_window` before further attempts are refused with
    /// [`Error::RateLimited`](crate::Error::RateLimited) (default 5; 0: no limit). Counted in
    /// the store, so the limit holds across processes. The same budget applies to each user's
    /// attempts at each room's password.
    pub failed_logins_allowed: u32,
    /// The window of `failed_logins_allowed` (default 5 minutes).
    pub failed_login_window: Duration,
    /// Other users one user may add to rooms (by adding members or creating a room with them)
    /// within `member_add_window` before further adds are refused with
    /// [`Error::RateLimited`](crate::Error::RateLimited) (default 60; 0: no limit). Counted in
    /// the store. Without it anyone could fill a stranger's room list by the thousand.
    pub member_adds_allowed: u32,
    /// The window of `member_adds_allowed` (default 1 minute).
    pub member_add_window: Duration,
    /// How long a live-feed ticket may wait to be redeemed (default 30 s).
    pub ticket_ttl: Duration,
    /// How long a live connection counts as online without its engine's heartbeat (default
    /// 60 s; the heartbeat runs every third of it). Bounds how long a crashed process leaves
    /// its users online.
    pub connection_ttl: Duration,
    /// How long a subscription waits for a missing message event before reading the message
    /// from the store (default 100 ms): the most an append that published nothing (another
    /// path, a lost event) delays the room's next live messages.
    pub gap_wait: Duration,
    /// Access tokens an engine keeps once checked, so that a request costs no store read
    /// (default 10 000; 0: none). An entry goes when the bus says its login ended or was
    /// refreshed, on any engine, and when the bus lost events.
    pub token_cache_size: usize,
    /// The longest an access token stays cached (default 2 s): the most a bus that failed
    /// without saying so could delay the end of a login on another engine.
    pub token_cache_ttl: Duration,
    /// Different reaction keys one message may carry (default 20): what a page of history
    /// carries stays bounded.
    pub max_reaction_keys: u32,
    /// Users one message may mention by name (default 50): a message's mention rows stay
    /// bounded (a whole-room mention is one flag, for owners and admins).
    pub max_mentions: usize,
    /// Rooms of at most this many members hear when a member comes online, goes offline or
    /// changes status (default 100). Larger rooms read presence with their member lists:
    /// announcing every change there would send each one to every member.
    pub presence_max_members: u32,
}

/// `with_FIELD(value)` for every field, so a configuration reads as one expression:
/// `ChatConfig::default().with_max_page_size(500).with_gap_wait(Duration::from_millis(50))`.
macro_rules! setters {
    ($($setter:ident => $field:ident: $type:ty,)*) => {
        impl ChatConfig {
            $(
                #[doc = concat!("Sets [`", stringify!($field), "`](Self::", stringify!($field), ").")]
                pub fn $setter(mut self, $field: $type) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

setters! {
    with_max_body_chars => max_body_chars: usize,
    with_max_metadata_bytes => max_metadata_bytes: usize,
    with_max_txn_id_bytes => max_txn_id_bytes: usize,
    with_default_page_size => default_page_size: u32,
    with_max_page_size => max_page_size: u32,
    with_max_room_capacity => max_room_capacity: u32,
    with_min_password_chars => min_password_chars: usize,
    with_access_token_ttl => access_token_ttl: Duration,
    with_refresh_token_ttl => refresh_token_ttl: Duration,
    with_password_hashing => password_hashing: HashCost,
    with_max_concurrent_hashes => max_concurrent_hashes: usize,
    with_max_queued_hashes => max_queued_hashes: usize,
    with_failed_logins_allowed => failed_logins_allowed: u32,
    with_failed_login_window => failed_login_window: Duration,
    with_member_adds_allowed => member_adds_allowed: u32,
    with_member_add_window => member_add_window: Duration,
    with_ticket_ttl => ticket_ttl: Duration,
    with_connection_ttl => connection_ttl: Duration,
    with_gap_wait => gap_wait: Duration,
    with_token_cache_size => token_cache_size: usize,
    with_token_cache_ttl => token_cache_ttl: Duration,
    with_max_reaction_keys => max_reaction_keys: u32,
    with_max_mentions => max_mentions: usize,
    with_presence_max_members => presence_max_members: u32,
}

impl Default for ChatConfig {
    fn default() -> Self {
        Self {
            max_body_chars: 16_000,
            max_metadata_bytes: 8 * 1024,
            max_txn_id_bytes: 128,
            default_page_size: 50,
            max_page_size: 200,
            max_room_capacity: 100_000,
            min_password_chars: 8,
            access_token_ttl: Duration::from_secs(60 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            password_hashing: HashCost::default(),
            max_concurrent_hashes: std::thread::available_parallelism().map_or(2, usize::from),
            max_queued_hashes: 32,
            failed_logins_allowed: 5,
            failed_login_window: Duration::from_secs(5 * 60),
            member_adds_allowed: 60,
            member_add_window: Duration::from_secs(60),
            ticket_ttl: Duration::from_secs(30),
            connection_ttl: Duration::from_secs(60),
            gap_wait: Duration::from_millis(100),
            token_cache_size: 10_000,
            token_cache_ttl: Duration::from_secs(2),
            max_reaction_keys: 20,
            max_mentions: 50,
            presence_max_members: 100,
        }
    }
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl HashCost {
    /// The Argon2 parameters, or `Invalid` for a cost Argon2 refuses.
    pub(crate) fn params(self) -> crate::Result<argon2::Params> {
        argon2::Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| crate::Error::invalid(Field::PasswordHashing, e.to_string()))
    }
}

impl Default for HashCost {
    /// The OWASP-recommended minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashCost {
    /// A cheap cost for test suites that register many users. Never use it in production.
    pub fn insecure_fast() -> Self {
        Self {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::store::MemoryStore;
    use crate::{Chat, Error};

    #[test]
    fn a_configuration_is_one_expression_and_a_bad_cost_is_refused() {
        let config = ChatConfig::default()
            .with_max_page_size(500)
            .with_gap_wait(Duration::from_millis(20));
        assert_eq!(
            (config.max_page_size, config.gap_wait.as_millis()),
            (500, 20)
        );
        let store = Arc::new(MemoryStore::new());
        let chat = Chat::builder(store.clone()).config(config).build().unwrap();
        let shared = chat.clone();
        assert_eq!(shared.config().max_page_size, 500);
        let impossible = HashCost {
            memory_kib: 1,
            iterations: 0,
            parallelism: 0,
        };
        let refused = Chat::builder(store)
            .config(ChatConfig::default().with_password_hashing(impossible))
            .build();
        assert!(matches!(
            refused,
            Err(Error::Invalid {
                field: Field::PasswordHashing,
                ..
            })
        ));
    }
}
