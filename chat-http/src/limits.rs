//! Request size limits and rate limits.

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chat_core::UserId;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Sizes and rates the server accepts. A rate of 0 turns that limit off.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// Largest request body, in bytes (default 64 KiB).
    pub max_body_bytes: usize,
    /// Largest WebSocket message or frame, in bytes (default 64 KiB).
    pub max_ws_message_bytes: usize,
    /// Login and register attempts from one IP address per `auth_window` (default 20).
    pub auth_attempts_per_ip: u32,
    /// The window of `auth_attempts_per_ip` (default 1 minute): the allowance refills evenly
    /// over it.
    pub auth_window: Duration,
    /// Messages per second one user may send, REST and WebSocket together (default 20); typing
    /// notices get the same allowance of their own…
    pub sends_per_second_per_user: u32,
    /// …with bursts of up to this many (default 50).
    pub send_burst: u32,
    /// Bytes of frames a WebSocket may have waiting to be written (default 4 MiB). Events
    /// beyond it are dropped and the client is told `resync`; replies beyond it drop the
    /// connection (a client that sends but does not read).
    pub ws_max_backlog_bytes: usize,
    /// How long one write to a WebSocket may wait for the client to read before the
    /// connection is dropped (default 30 s).
    pub ws_write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            max_ws_message_bytes: 64 * 1024,
            auth_attempts_per_ip: 20,
            auth_window: Duration::from_secs(60),
            sends_per_second_per_user: 20,
            send_burst: 50,
            ws_max_backlog_bytes: 4 * 1024 * 1024,
            ws_write_timeout: Duration::from_secs(30),
        }
    }
}

/// One keyed limiter, or none when its rate is 0.
struct Limiter<K: Hash + Eq + Clone>(Option<DefaultKeyedRateLimiter<K>>);

impl<K: Hash + Eq + Clone> Limiter<K> {
    fn new(quota: Option<Quota>) -> Self {
        Self(quota.map(RateLimiter::keyed))
    }

    fn check(&self, key: &K) -> Result<(), ApiError> {
        let Some(limiter) = &self.0 else {
            return Ok(());
        };
        limiter.check_key(key).map_err(|not_until| {
            ApiError::rate_limited(not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Forgets keys whose buckets are full again, so memory follows active clients only.
    fn forget_idle(&self) {
        if let Some(limiter) = &self.0 {
            limiter.retain_recent();
        }
    }
}

/// The server's rate limiters.
pub(crate) struct RateLimits {
    auth: Limiter<IpAddr>,
    send: Limiter<UserId>,
    typing: Limiter<UserId>,
    checks: AtomicU64,
}

/// Every this many checks, idle keys are forgotten.
const FORGET_EVERY: u64 = 4096;

impl RateLimits {
    pub(crate) fn new(limits: &Limits) -> Self {
        let auth = NonZeroU32::new(limits.auth_attempts_per_ip).and_then(|attempts| {
            let period = limits.auth_window / attempts.get();
            Quota::with_period(period).map(|quota| quota.allow_burst(attempts))
        });
        let send = NonZeroU32::new(limits.sends_per_second_per_user).map(|rate| {
            Quota::per_second(rate).allow_burst(NonZeroU32::new(limits.send_burst).unwrap_or(rate))
        });
        Self {
            auth: Limiter::new(auth),
            send: Limiter::new(send),
            // Typing notices fan out to every member like messages: the same allowance.
            typing: Limiter::new(send),
            checks: AtomicU64::new(0),
        }
    }

    /// A login or register attempt from `ip`.
    pub(crate) fn auth_attempt(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.tick();
        self.auth.check(&ip)
    }

    /// A message sent by `user`.
    pub(crate) fn send(&self, user: UserId) -> Result<(), ApiError> {
        self.tick();
        self.send.check(&user)
    }

    /// A typing notice sent by `user`.
    pub(crate) fn typing(&self, user: UserId) -> Result<(), ApiError> {
        self.tick();
        self.typing.check(&user)
    }

    fn tick(&self) {
        if self.checks.fetch_add(1, Ordering::Relaxed) % FORGET_EVERY == FORGET_EVERY - 1 {
            self.auth.forget_idle();
            self.send.forget_idle();
            self.typing.forget_idle();
        }
    }
}
