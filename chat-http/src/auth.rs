//! How a request becomes an acting user: pluggable, with the built-in bearer tokens as default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::http::header;
use axum::http::request::Parts;
use chat_core::{Chat, SessionId, UserId};
use rand::RngCore;

use crate::error::ApiError;

/// The user a request acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    /// The user, passed to every [`Chat`] call.
    pub user_id: UserId,
    /// The built-in login the request came with, if any (what logout revokes).
    pub session_id: Option<SessionId>,
}

/// Turns a request into an [`Actor`]. Implement it to reuse a host application's own
/// authentication (a session cookie, a gateway header…); the default is [`BearerTokens`].
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The acting user, or an error (usually [`ApiError::unauthenticated`]).
    async fn authenticate(&self, chat: &Chat, request: &Parts) -> Result<Actor, ApiError>;
}

/// `Authorization: Bearer <access token>` issued by [`Chat::login`].
#[derive(Debug, Default, Clone, Copy)]
pub struct BearerTokens;

/// The bearer token of a request, if it has one.
pub(crate) fn bearer(request: &Parts) -> Option<&str> {
    let value = request.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

#[async_trait]
impl Authenticator for BearerTokens {
    async fn authenticate(&self, chat: &Chat, request: &Parts) -> Result<Actor, ApiError> {
        let token = bearer(request).ok_or_else(ApiError::unauthenticated)?;
        let auth = chat.authenticate(token).await?;
        Ok(Actor {
            user_id: auth.user_id,
            session_id: Some(auth.session_id),
        })
    }
}

/// Single-use, short-lived tickets for opening the WebSocket where a header cannot be set (a
/// browser's `WebSocket`). Kept in memory: a ticket is used within seconds on the same server.
#[derive(Debug)]
pub(crate) struct Tickets {
    lifetime: Duration,
    issued: Mutex<HashMap<String, (Actor, Instant)>>,
}

impl Tickets {
    pub(crate) fn new(lifetime: Duration) -> Self {
        Self {
            lifetime,
            issued: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    /// A new ticket for `actor`.
    pub(crate) fn issue(&self, actor: Actor) -> String {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let ticket: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        issued.retain(|_, (_, at)| now.duration_since(*at) < self.lifetime);
        issued.insert(ticket.clone(), (actor, now));
        ticket
    }

    /// The ticket's actor, once: the ticket is spent whether or not it was still valid.
    pub(crate) fn redeem(&self, ticket: &str) -> Option<Actor> {
        let mut issued = self.issued.lock().unwrap_or_else(|e| e.into_inner());
        let (actor, at) = issued.remove(ticket)?;
        (at.elapsed() < self.lifetime).then_some(actor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_single_use_and_expire() {
        let actor = Actor {
            user_id: UserId(uuid::Uuid::from_u128(1)),
            session_id: None,
        };
        let tickets = Tickets::new(Duration::from_secs(30));
        let ticket = tickets.issue(actor);
        assert_eq!(ticket.len(), 64);
        assert_eq!(tickets.redeem(&ticket), Some(actor));
        assert_eq!(tickets.redeem(&ticket), None);
        assert_eq!(tickets.redeem("made-up"), None);

        let short = Tickets::new(Duration::ZERO);
        let ticket = short.issue(actor);
        assert_eq!(short.redeem(&ticket), None);
    }
}
