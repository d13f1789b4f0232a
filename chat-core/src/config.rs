//! Limits and settings of a [`Chat`](crate::Chat).

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
