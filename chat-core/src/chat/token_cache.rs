//! Access tokens already checked against the store, so that an authenticated request costs no
//! store read.
//!
//! What may stay per process is only what no user can tell apart, so an entry goes as soon as
//! anything could have ended it: the bus says its login ended or was refreshed, on any engine
//! (the cache reads the bus before every lookup, so on one process, or on engines sharing an
//! in-process bus, a logout is seen by the next request); the bus lost events (every entry
//! goes); the token expires; or it has been cached for [`ChatConfig::token_cache_ttl`], which
//! bounds what a bus that fails without saying so could leave behind.
//!
//! [`ChatConfig::token_cache_ttl`]: crate::ChatConfig::token_cache_ttl

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, TimeDelta, Utc};
use futures_util::{FutureExt, StreamExt};

use crate::auth::{Authenticated, TokenHash};
use crate::events::{Delivery, Event, EventBus, EventStream};

/// What a miss hands back, to be given to [`TokenCache::insert`] with the store's answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Miss {
    /// The cache's generation when the miss was read: an entry read from the store before an
    /// invalidation that came after it must not be kept.
    generation: u64,
}

pub(crate) struct TokenCache {
    capacity: usize,
    ttl: TimeDelta,
    bus: Arc<dyn EventBus>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    entries: HashMap<TokenHash, Entry>,
    /// The bus, subscribed on first use: before the first store read whose answer is cached.
    hints: Option<EventStream>,
    /// The bus ended: nothing can be invalidated any more, so nothing is cached.
    deaf: bool,
    /// Counts invalidations.
    generation: u64,
}

struct Entry {
    login: Authenticated,
    valid_until: DateTime<Utc>,
}

impl TokenCache {
    /// A cache of at most `capacity` tokens (0: no cache), each kept at most `ttl`.
    pub(crate) fn new(capacity: usize, ttl: std::time::Duration, bus: Arc<dyn EventBus>) -> Self {
        Self {
            capacity,
            ttl: TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX),
            bus,
            state: Mutex::new(State::default()),
        }
    }

    /// The login of a cached token, or a [`Miss`] to read the store with.
    pub(crate) fn get(&self, hash: &TokenHash, now: DateTime<Utc>) -> Result<Authenticated, Miss> {
        let state = self.fresh_state();
        match state.entries.get(hash) {
            Some(entry) if entry.valid_until > now => Ok(entry.login),
            _ => Err(Miss {
                generation: state.generation,
            }),
        }
    }

    /// Keeps what the store said about a token after `miss`, until `expires_at` or the TTL,
    /// unless something was invalidated since the miss.
    pub(crate) fn insert(
        &self,
        miss: Miss,
        hash: TokenHash,
        login: Authenticated,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) {
        let mut state = self.fresh_state();
        if state.deaf || state.generation != miss.generation || self.capacity == 0 {
            return;
        }
        if state.entries.len() >= self.capacity {
            // Bounded without bookkeeping: tokens still in use come back on the next read.
            state.entries.clear();
        }
        let valid_until = now
            .checked_add_signed(self.ttl)
            .map_or(expires_at, |end| end.min(expires_at));
        state.entries.insert(hash, Entry { login, valid_until });
    }

    /// Drops the entries of a login (or of every login of a user) at once: for changes made by
    /// this engine, which must not wait for their own event to come round.
    pub(crate) fn forget(&self, user_id: crate::UserId, session_id: Option<crate::SessionId>) {
        let mut state = self.lock();
        state.forget(user_id, session_id);
    }

    /// The state after every hint the bus has delivered so far.
    fn fresh_state(&self) -> MutexGuard<'_, State> {
        let mut state = self.lock();
        if self.capacity == 0 || state.deaf {
            return state;
        }
        if state.hints.is_none() {
            state.hints = Some(self.bus.subscribe());
        }
        while let Some(hints) = state.hints.as_mut() {
            match hints.next().now_or_never() {
                None => break,
                Some(Some(Delivery::Event(event))) => match &*event {
                    Event::LoginEnded {
                        user_id,
                        session_id,
                    } => state.forget(*user_id, *session_id),
                    Event::LoginRefreshed {
                        user_id,
                        session_id,
                    } => state.forget(*user_id, Some(*session_id)),
                    _ => {}
                },
                Some(Some(Delivery::Lagged)) => {
                    state.generation += 1;
                    state.entries.clear();
                }
                Some(None) => {
                    state.deaf = true;
                    state.hints = None;
                    state.entries.clear();
                }
            }
        }
        state
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing that can panic runs under the lock; recover the state rather than fail.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn forget(&mut self, user_id: crate::UserId, session_id: Option<crate::SessionId>) {
        self.generation += 1;
        self.entries.retain(|_, entry| {
            entry.login.user_id != user_id
                || session_id.is_some_and(|session| session != entry.login.session_id)
        });
    }
}
