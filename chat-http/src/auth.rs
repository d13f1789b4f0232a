//! How a request becomes an acting user: pluggable, with the built-in bearer tokens as default.

use async_trait::async_trait;
use axum::http::header;
use axum::http::request::Parts;
use chat_core::{Chat, SessionId, UserId};

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
