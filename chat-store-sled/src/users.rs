//! Users and login sessions.

use async_trait::async_trait;
use chat_core::auth::TokenHash;
use chat_core::store::{
    IssuedToken, NewSession, Rotation, SessionStore, TokenExchange, TokenKind, TokenRecord,
    UserQuery, UserStore, fold,
};
use chat_core::{Conflict, Entity, SessionId, StoreError, User, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::SledStore;
use crate::codec::{StoreResult, backend, decode, pair, read, tx_read, tx_write};
use crate::tx::{Kind, Trees, Tx};

/// A token as stored under its hash.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredToken {
    refresh: bool,
    /// A live-feed ticket (absent in records written before tickets were stored).
    #[serde(default)]
    ticket: bool,
    session_id: SessionId,
    user_id: UserId,
    expires_at: DateTime<Utc>,
    rotated: bool,
}

crate::records::own_record!(StoredToken);

impl StoredToken {
    fn record(self, hash: TokenHash) -> TokenRecord {
        TokenRecord {
            hash,
            kind: if self.ticket {
                TokenKind::Ticket
            } else if self.refresh {
                TokenKind::Refresh
            } else {
                TokenKind::Access
            },
            session_id: self.session_id,
            user_id: self.user_id,
            expires_at: self.expires_at,
            rotated: self.rotated,
        }
    }

    /// An access or refresh token that still keeps its login alive at `now`.
    fn keeps_login(&self, now: DateTime<Utc>) -> bool {
        !self.ticket && !self.rotated && self.expires_at > now
    }

    fn issued(
        token: &IssuedToken,
        refresh: bool,
        session_id: SessionId,
        user_id: UserId,
    ) -> (TokenHash, Self) {
        (
            token.hash,
            Self {
                refresh,
                ticket: false,
                session_id,
                user_id,
                expires_at: token.expires_at,
                rotated: false,
            },
        )
    }
}

fn token_hash(bytes: &[u8]) -> StoreResult<TokenHash> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| backend("unreadable stored token hash"))?;
    Ok(TokenHash::from_bytes(bytes))
}

/// Committed tokens whose index key (`owner ‖ hash`) starts with `owner` in `index`.
fn tokens_under(
    trees: &Trees,
    index: Kind,
    owner: uuid::Uuid,
) -> StoreResult<Vec<(TokenHash, StoredToken)>> {
    let mut found = Vec::new();
    for key in trees.tree(index).scan_prefix(owner.as_bytes()).keys() {
        let key = key.map_err(backend)?;
        let hash = token_hash(key.get(16..).unwrap_or_default())?;
        if let Some(token) = read::<StoredToken>(trees, Kind::Tokens, hash.as_bytes())? {
            found.push((hash, token));
        }
    }
    Ok(found)
}

fn put_tokens(tx: &Tx<'_>, tokens: &[(TokenHash, StoredToken)]) -> StoreResult<()> {
    for (hash, token) in tokens {
        let hash = hash.as_bytes();
        tx_write(tx, Kind::Tokens, hash, token)?;
        tx.insert(Kind::TokensBySession, pair(token.session_id.0, hash), &[])?;
        tx.insert(Kind::TokensByUser, pair(token.user_id.0, hash), &[])?;
    }
    Ok(())
}

fn remove_tokens(tx: &Tx<'_>, tokens: &[(TokenHash, StoredToken)]) -> StoreResult<()> {
    for (hash, token) in tokens {
        let hash = hash.as_bytes();
        tx.remove(Kind::Tokens, hash)?;
        tx.remove(Kind::TokensBySession, pair(token.session_id.0, hash))?;
        tx.remove(Kind::TokensByUser, pair(token.user_id.0, hash))?;
    }
    Ok(())
}

impl SledStore {
    fn user_by(&self, index: Kind, key: &str) -> StoreResult<Option<User>> {
        match self.trees.get(index, key)? {
            Some(id) => read(&self.trees, Kind::Users, id),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl UserStore for SledStore {
    async fn insert_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        let user = user.clone();
        let hash = password_hash.map(str::to_owned);
        self.write(move |tx| {
            let id = user.id.0.as_bytes();
            if tx.get(Kind::Usernames, &user.username)?.is_some() {
                return Err(StoreError::Conflict(Conflict::UsernameTaken));
            }
            if let Some(email) = &user.email
                && tx.get(Kind::Emails, email)?.is_some()
            {
                return Err(StoreError::Conflict(Conflict::EmailTaken));
            }
            if let Some(email) = &user.email {
                tx.insert(Kind::Emails, email, id)?;
            }
            tx.insert(Kind::Usernames, &user.username, id)?;
            tx_write(tx, Kind::Users, id, &user)?;
            if let Some(hash) = &hash {
                tx.insert(Kind::Passwords, id, hash.as_bytes())?;
            }
            Ok(())
        })
        .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        read(&self.trees, Kind::Users, id.0.as_bytes())
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.user_by(Kind::Usernames, username)
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.user_by(Kind::Emails, email)
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let hash = self.trees.get(Kind::Passwords, id.0.as_bytes())?;
        hash.map(|h| String::from_utf8(h.to_vec()).map_err(backend))
            .transpose()
    }

    async fn set_password_hash(&self, id: UserId, hash: Option<&str>) -> StoreResult<()> {
        let hash = hash.map(str::to_owned);
        self.write(move |tx| {
            let key = id.0.as_bytes();
            if tx.get(Kind::Users, key)?.is_none() {
                return Err(StoreError::NotFound(Entity::User));
            }
            match &hash {
                Some(hash) => tx.insert(Kind::Passwords, key, hash.as_bytes())?,
                None => drop(tx.remove(Kind::Passwords, key)?),
            }
            Ok(())
        })
        .await
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |tx| {
            let id = user.id.0.as_bytes();
            let old: User =
                tx_read(tx, Kind::Users, id)?.ok_or(StoreError::NotFound(Entity::User))?;
            let new_name = old.username != user.username;
            let new_email = old.email != user.email;
            if new_name && tx.get(Kind::Usernames, &user.username)?.is_some() {
                return Err(StoreError::Conflict(Conflict::UsernameTaken));
            }
            if new_email
                && let Some(email) = &user.email
                && tx.get(Kind::Emails, email)?.is_some()
            {
                return Err(StoreError::Conflict(Conflict::EmailTaken));
            }
            if new_name {
                tx.remove(Kind::Usernames, &old.username)?;
                tx.insert(Kind::Usernames, &user.username, id)?;
            }
            if new_email {
                if let Some(email) = &old.email {
                    tx.remove(Kind::Emails, email)?;
                }
                if let Some(email) = &user.email {
                    tx.insert(Kind::Emails, email, id)?;
                }
            }
            tx_write(tx, Kind::Users, id, &user)
        })
        .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        self.write_scanning(
            move |trees| tokens_under(trees, Kind::TokensByUser, id.0),
            move |tx, tokens| {
                let key = id.0.as_bytes();
                let old: User =
                    tx_read(tx, Kind::Users, key)?.ok_or(StoreError::NotFound(Entity::User))?;
                tx.remove(Kind::Users, key)?;
                tx.remove(Kind::Usernames, &old.username)?;
                if let Some(email) = &old.email {
                    tx.remove(Kind::Emails, email)?;
                }
                tx.remove(Kind::Passwords, key)?;
                remove_tokens(tx, tokens)
            },
        )
        .await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let usernames = self.trees.tree(Kind::Usernames);
        let range = match &query.after_username {
            Some(after) => usernames.range::<&[u8], _>((
                std::ops::Bound::Excluded(after.as_bytes()),
                std::ops::Bound::Unbounded,
            )),
            None => usernames.iter(),
        };
        let search = query.search.as_deref().map(fold);
        let mut users = Vec::new();
        for entry in range {
            if users.len() >= query.limit as usize {
                break;
            }
            let (_, id) = entry.map_err(backend)?;
            let Some(user) = read::<User>(&self.trees, Kind::Users, id)? else {
                continue;
            };
            let matches = search.as_deref().is_none_or(|needle| {
                user.username.contains(needle) || fold(&user.display_name).contains(needle)
            });
            if matches {
                users.push(user);
            }
        }
        Ok(users)
    }
}

#[async_trait]
impl SessionStore for SledStore {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<()> {
        let (id, user) = (session.session_id, session.user_id);
        let tokens = [
            StoredToken::issued(&session.access, false, id, user),
            StoredToken::issued(&session.refresh, true, id, user),
        ];
        self.write(move |tx| put_tokens(tx, &tokens)).await
    }

    async fn token(&self, hash: &TokenHash) -> StoreResult<Option<TokenRecord>> {
        let token: Option<StoredToken> = read(&self.trees, Kind::Tokens, hash.as_bytes())?;
        Ok(token.map(|token| token.record(*hash)))
    }

    async fn rotate_refresh_token(&self, exchange: &TokenExchange) -> StoreResult<Rotation> {
        let (presented, exchange) = (exchange.presented, exchange.clone());
        self.write_scanning(
            move |trees| {
                let token = read::<StoredToken>(trees, Kind::Tokens, presented.as_bytes())?;
                let login = match &token {
                    Some(token) => tokens_under(trees, Kind::TokensBySession, token.session_id.0)?,
                    None => Vec::new(),
                };
                Ok((token, login))
            },
            move |tx, (token, login)| {
                let Some(token) = token.clone().filter(|token| token.refresh && !token.ticket)
                else {
                    return Ok(Rotation::Invalid);
                };
                let session = token.session_id;
                if token.rotated {
                    remove_tokens(tx, login)?;
                    return Ok(Rotation::Reused {
                        session_id: session,
                        user_id: token.user_id,
                    });
                }
                if token.expires_at <= exchange.at {
                    return Ok(Rotation::Invalid);
                }
                let old_access: Vec<_> = login
                    .iter()
                    .filter(|(_, t)| !t.refresh && !t.ticket)
                    .cloned()
                    .collect();
                remove_tokens(tx, &old_access)?;
                let user = token.user_id;
                let rotated = StoredToken {
                    rotated: true,
                    ..token
                };
                put_tokens(
                    tx,
                    &[
                        (presented, rotated),
                        StoredToken::issued(&exchange.access, false, session, user),
                        StoredToken::issued(&exchange.refresh, true, session, user),
                    ],
                )?;
                Ok(Rotation::Rotated {
                    session_id: session,
                    user_id: user,
                })
            },
        )
        .await
    }

    async fn insert_ticket(
        &self,
        ticket: &IssuedToken,
        session: SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let (hash, ticket) = StoredToken::issued(ticket, false, session, user);
        let ticket = StoredToken {
            ticket: true,
            ..ticket
        };
        self.write_scanning(
            move |trees| tokens_under(trees, Kind::TokensBySession, session.0),
            move |tx, login| {
                if !login.iter().any(|(_, token)| token.keeps_login(now)) {
                    return Ok(false);
                }
                put_tokens(tx, &[(hash, ticket.clone())])?;
                Ok(true)
            },
        )
        .await
    }

    async fn take_ticket(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TokenRecord>> {
        let hash = *hash;
        let taken = self
            .write(move |tx| {
                let token = tx_read::<StoredToken>(tx, Kind::Tokens, hash.as_bytes())?;
                let Some(token) = token.filter(|token| token.ticket) else {
                    return Ok(None);
                };
                remove_tokens(tx, &[(hash, token.clone())])?;
                Ok(Some(token.record(hash)))
            })
            .await?;
        Ok(taken.filter(|ticket| ticket.expires_at > now))
    }

    async fn session_active(&self, session: SessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let login = tokens_under(&self.trees, Kind::TokensBySession, session.0)?;
        Ok(login.iter().any(|(_, token)| token.keeps_login(now)))
    }

    async fn revoke_session(&self, session: SessionId) -> StoreResult<()> {
        self.write_scanning(
            move |trees| tokens_under(trees, Kind::TokensBySession, session.0),
            |tx, tokens| remove_tokens(tx, tokens),
        )
        .await
    }

    async fn revoke_user_sessions(&self, user: UserId) -> StoreResult<()> {
        self.write_scanning(
            move |trees| tokens_under(trees, Kind::TokensByUser, user.0),
            |tx, tokens| remove_tokens(tx, tokens),
        )
        .await
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write_scanning(
            move |trees| {
                let mut expired = Vec::new();
                for entry in trees.tree(Kind::Tokens).iter() {
                    let (hash, value) = entry.map_err(backend)?;
                    let token: StoredToken = decode(&value)?;
                    if token.expires_at < now {
                        expired.push((token_hash(&hash)?, token));
                    }
                }
                Ok(expired)
            },
            |tx, expired| {
                remove_tokens(tx, expired)?;
                Ok(expired.len() as u64)
            },
        )
        .await
    }
}
