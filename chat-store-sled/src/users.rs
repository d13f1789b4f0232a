//! Users and login sessions.

use async_trait::async_trait;
use chat_core::auth::TokenHash;
use chat_core::store::{
    IssuedToken, NewSession, Rotation, SessionStore, TokenKind, TokenRecord, UserQuery, UserStore,
};
use chat_core::{Conflict, Entity, SessionId, StoreError, User, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sled::Transactional;

use crate::codec::{
    OrAbort, StoreResult, abort, backend, decode, decode_opt, encode, pair, settled,
};
use crate::{SledStore, Trees};

/// A token as stored under its hash.
#[derive(Debug, Serialize, Deserialize)]
struct StoredToken {
    refresh: bool,
    session_id: SessionId,
    user_id: UserId,
    expires_at: DateTime<Utc>,
    rotated: bool,
}

impl StoredToken {
    fn record(self, hash: TokenHash) -> TokenRecord {
        TokenRecord {
            hash,
            kind: if self.refresh {
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
}

fn token_hash(bytes: &[u8]) -> StoreResult<TokenHash> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| backend("unreadable stored token hash"))?;
    Ok(TokenHash::from_bytes(bytes))
}

impl Trees {
    fn user_by(&self, index: &sled::Tree, key: &str) -> StoreResult<Option<User>> {
        match index.get(key).map_err(backend)? {
            Some(id) => decode_opt(self.users.get(id).map_err(backend)?),
            None => Ok(None),
        }
    }

    fn stored_token(&self, hash: &[u8]) -> StoreResult<Option<StoredToken>> {
        decode_opt(self.tokens.get(hash).map_err(backend)?)
    }

    /// The tokens whose index key starts with `prefix` in `index`.
    fn tokens_under(
        &self,
        index: &sled::Tree,
        prefix: &[u8],
    ) -> StoreResult<Vec<(TokenHash, StoredToken)>> {
        let mut found = Vec::new();
        for entry in index.scan_prefix(prefix).keys() {
            let key = entry.map_err(backend)?;
            let hash = token_hash(key.get(16..).unwrap_or_default())?;
            if let Some(token) = self.stored_token(hash.as_bytes())? {
                found.push((hash, token));
            }
        }
        Ok(found)
    }

    /// Stores tokens with their two index entries, atomically.
    fn insert_tokens(&self, tokens: &[(TokenHash, StoredToken)]) -> StoreResult<()> {
        let encoded = tokens
            .iter()
            .map(|(hash, token)| Ok((hash, token, encode(token)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        settled(
            (&self.tokens, &self.tokens_by_session, &self.tokens_by_user).transaction(
                |(tokens, by_session, by_user)| {
                    for (hash, token, value) in &encoded {
                        let hash = hash.as_bytes();
                        tokens.insert(&hash[..], value.as_slice())?;
                        by_session.insert(pair(token.session_id.0, hash), &[][..])?;
                        by_user.insert(pair(token.user_id.0, hash), &[][..])?;
                    }
                    Ok(())
                },
            ),
        )
    }

    /// Deletes tokens with their index entries, atomically.
    fn remove_tokens(&self, tokens: &[(TokenHash, StoredToken)]) -> StoreResult<()> {
        settled(
            (&self.tokens, &self.tokens_by_session, &self.tokens_by_user).transaction(
                |(all, by_session, by_user)| {
                    for (hash, token) in tokens {
                        let hash = hash.as_bytes();
                        all.remove(&hash[..])?;
                        by_session.remove(pair(token.session_id.0, hash))?;
                        by_user.remove(pair(token.user_id.0, hash))?;
                    }
                    Ok(())
                },
            ),
        )
    }
}

#[async_trait]
impl UserStore for SledStore {
    async fn insert_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        let value = encode(user)?;
        self.write(|t| {
            settled(
                (&t.users, &t.usernames, &t.emails, &t.passwords).transaction(
                    |(users, usernames, emails, passwords)| {
                        let id = user.id.0.as_bytes();
                        if usernames.get(&user.username)?.is_some() {
                            return abort(StoreError::Conflict(Conflict::UsernameTaken));
                        }
                        if let Some(email) = &user.email {
                            if emails.get(email)?.is_some() {
                                return abort(StoreError::Conflict(Conflict::EmailTaken));
                            }
                            emails.insert(email.as_str(), &id[..])?;
                        }
                        usernames.insert(user.username.as_str(), &id[..])?;
                        users.insert(&id[..], value.as_slice())?;
                        if let Some(hash) = password_hash {
                            passwords.insert(&id[..], hash)?;
                        }
                        Ok(())
                    },
                ),
            )
        })
        .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        decode_opt(self.trees.users.get(id.0.as_bytes()).map_err(backend)?)
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.trees.user_by(&self.trees.usernames, username)
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.trees.user_by(&self.trees.emails, email)
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let hash = self.trees.passwords.get(id.0.as_bytes()).map_err(backend)?;
        hash.map(|h| String::from_utf8(h.to_vec()).map_err(backend))
            .transpose()
    }

    async fn set_password_hash(&self, id: UserId, hash: Option<&str>) -> StoreResult<()> {
        self.write(|t| {
            settled((&t.users, &t.passwords).transaction(|(users, passwords)| {
                let key = id.0.as_bytes();
                if users.get(key)?.is_none() {
                    return abort(StoreError::NotFound(Entity::User));
                }
                match hash {
                    Some(hash) => passwords.insert(&key[..], hash)?,
                    None => passwords.remove(&key[..])?,
                };
                Ok(())
            }))
        })
        .await
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let value = encode(user)?;
        self.write(|t| {
            settled((&t.users, &t.usernames, &t.emails).transaction(
                |(users, usernames, emails)| {
                    let id = user.id.0.as_bytes();
                    let Some(old) = users.get(id)? else {
                        return abort(StoreError::NotFound(Entity::User));
                    };
                    let old: User = decode(&old).or_abort()?;
                    if old.username != user.username {
                        if usernames.get(&user.username)?.is_some() {
                            return abort(StoreError::Conflict(Conflict::UsernameTaken));
                        }
                        usernames.remove(old.username.as_str())?;
                        usernames.insert(user.username.as_str(), &id[..])?;
                    }
                    if old.email != user.email {
                        if let Some(email) = &user.email {
                            if emails.get(email)?.is_some() {
                                return abort(StoreError::Conflict(Conflict::EmailTaken));
                            }
                            emails.insert(email.as_str(), &id[..])?;
                        }
                        if let Some(email) = &old.email {
                            emails.remove(email.as_str())?;
                        }
                    }
                    users.insert(&id[..], value.as_slice())?;
                    Ok(())
                },
            ))
        })
        .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        self.write(|t| {
            settled(
                (&t.users, &t.usernames, &t.emails, &t.passwords).transaction(
                    |(users, usernames, emails, passwords)| {
                        let key = id.0.as_bytes();
                        let Some(old) = users.remove(&key[..])? else {
                            return abort(StoreError::NotFound(Entity::User));
                        };
                        let old: User = decode(&old).or_abort()?;
                        usernames.remove(old.username.as_str())?;
                        if let Some(email) = &old.email {
                            emails.remove(email.as_str())?;
                        }
                        passwords.remove(&key[..])?;
                        Ok(())
                    },
                ),
            )?;
            let tokens = t.tokens_under(&t.tokens_by_user, id.0.as_bytes())?;
            t.remove_tokens(&tokens)
        })
        .await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let t = &self.trees;
        let range = match &query.after_username {
            Some(after) => t.usernames.range::<&[u8], _>((
                std::ops::Bound::Excluded(after.as_bytes()),
                std::ops::Bound::Unbounded,
            )),
            None => t.usernames.iter(),
        };
        let search = query.search.as_deref().map(str::to_lowercase);
        let mut users = Vec::new();
        for entry in range {
            if users.len() >= query.limit as usize {
                break;
            }
            let (_, id) = entry.map_err(backend)?;
            let Some(user) = decode_opt::<User>(t.users.get(id).map_err(backend)?)? else {
                continue;
            };
            let matches = search.as_deref().is_none_or(|needle| {
                user.username.contains(needle) || user.display_name.to_lowercase().contains(needle)
            });
            if matches {
                users.push(user);
            }
        }
        Ok(users)
    }
}

fn stored(
    token: &IssuedToken,
    refresh: bool,
    session_id: SessionId,
    user_id: UserId,
) -> (TokenHash, StoredToken) {
    (
        token.hash,
        StoredToken {
            refresh,
            session_id,
            user_id,
            expires_at: token.expires_at,
            rotated: false,
        },
    )
}

#[async_trait]
impl SessionStore for SledStore {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<()> {
        let (id, user) = (session.session_id, session.user_id);
        let tokens = [
            stored(&session.access, false, id, user),
            stored(&session.refresh, true, id, user),
        ];
        self.write(|t| t.insert_tokens(&tokens)).await
    }

    async fn token(&self, hash: &TokenHash) -> StoreResult<Option<TokenRecord>> {
        let token = self.trees.stored_token(hash.as_bytes())?;
        Ok(token.map(|token| token.record(*hash)))
    }

    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        access: &IssuedToken,
        refresh: &IssuedToken,
        now: DateTime<Utc>,
    ) -> StoreResult<Rotation> {
        // Under the write lock, reading then writing is atomic against every other write.
        self.write(|t| {
            let Some(token) = t.stored_token(presented.as_bytes())? else {
                return Ok(Rotation::Invalid);
            };
            let session = token.session_id;
            if !token.refresh {
                return Ok(Rotation::Invalid);
            }
            let login = t.tokens_under(&t.tokens_by_session, session.0.as_bytes())?;
            if token.rotated {
                t.remove_tokens(&login)?;
                return Ok(Rotation::Reused {
                    session_id: session,
                });
            }
            if token.expires_at <= now {
                return Ok(Rotation::Invalid);
            }
            let old_access: Vec<_> = login.into_iter().filter(|(_, tk)| !tk.refresh).collect();
            t.remove_tokens(&old_access)?;
            let user = token.user_id;
            let rotated = StoredToken {
                rotated: true,
                ..token
            };
            t.insert_tokens(&[
                (*presented, rotated),
                stored(access, false, session, user),
                stored(refresh, true, session, user),
            ])?;
            Ok(Rotation::Rotated {
                session_id: session,
                user_id: user,
            })
        })
        .await
    }

    async fn revoke_session(&self, session: SessionId) -> StoreResult<()> {
        self.write(|t| {
            let tokens = t.tokens_under(&t.tokens_by_session, session.0.as_bytes())?;
            t.remove_tokens(&tokens)
        })
        .await
    }

    async fn revoke_user_sessions(&self, user: UserId) -> StoreResult<()> {
        self.write(|t| {
            let tokens = t.tokens_under(&t.tokens_by_user, user.0.as_bytes())?;
            t.remove_tokens(&tokens)
        })
        .await
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.write(|t| {
            let mut expired = Vec::new();
            for entry in t.tokens.iter() {
                let (hash, value) = entry.map_err(backend)?;
                let token: StoredToken = decode(&value)?;
                if token.expires_at < now {
                    expired.push((token_hash(&hash)?, token));
                }
            }
            t.remove_tokens(&expired)?;
            Ok(expired.len() as u64)
        })
        .await
    }
}
