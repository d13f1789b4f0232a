//! Users and login sessions.

use async_trait::async_trait;
use chat_core::auth::TokenHash;
use chat_core::store::{
    IssuedToken, NewSession, Rotation, SessionStore, TokenExchange, TokenKind, TokenRecord,
    UserQuery, UserStore, fold, user_search_text,
};
use chat_core::{Entity, SessionId, StoreError, User, UserId};
use chrono::{DateTime, Utc};
use sqlx::SqliteConnection;

use crate::SqliteStore;
use crate::codec::{self, StoreResult, map_err, micros, profile_json, user_columns};

fn user_not_found(rows: u64) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound(Entity::User))
    } else {
        Ok(())
    }
}

impl SqliteStore {
    async fn user_where(&self, sql: &'static str, value: &str) -> StoreResult<Option<User>> {
        sqlx::query(sql)
            .bind(value)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?
            .map(|row| codec::user(&row))
            .transpose()
    }
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        let user = user.clone();
        let profile = profile_json(&user)?;
        let hash = password_hash.map(str::to_owned);
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO users (id, username, email, display_name, profile, presence, \
                         status_message, is_admin, password_hash, created_at, updated_at, search) \
                         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    )
                    .bind(user.id.0)
                    .bind(&user.username)
                    .bind(&user.email)
                    .bind(&user.display_name)
                    .bind(profile)
                    .bind(user.status.as_str())
                    .bind(&user.status_message)
                    .bind(user.is_admin)
                    .bind(hash)
                    .bind(micros(user.created_at))
                    .bind(micros(user.updated_at))
                    .bind(user_search_text(&user.username, &user.display_name))
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = ?");
        sqlx::query(sql)
            .bind(id.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?
            .map(|row| codec::user(&row))
            .transpose()
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE username = ?");
        self.user_where(sql, username).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE email = ?");
        self.user_where(sql, email).await
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = ?")
                .bind(id.0)
                .fetch_optional(&self.readers)
                .await
                .map_err(map_err)?;
        Ok(hash.flatten())
    }

    async fn set_password_hash(&self, id: UserId, hash: Option<&str>) -> StoreResult<()> {
        let hash = hash.map(str::to_owned);
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query("UPDATE users SET password_hash = ? WHERE id = ?")
                        .bind(hash)
                        .bind(id.0)
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    user_not_found(done.rows_affected())
                })
            })
            .await
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let user = user.clone();
        let profile = profile_json(&user)?;
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE users SET username = ?, email = ?, display_name = ?, profile = ?, \
                         presence = ?, status_message = ?, is_admin = ?, created_at = ?, \
                         updated_at = ?, search = ? WHERE id = ?",
                    )
                    .bind(&user.username)
                    .bind(&user.email)
                    .bind(&user.display_name)
                    .bind(profile)
                    .bind(user.status.as_str())
                    .bind(&user.status_message)
                    .bind(user.is_admin)
                    .bind(micros(user.created_at))
                    .bind(micros(user.updated_at))
                    .bind(user_search_text(&user.username, &user.display_name))
                    .bind(user.id.0)
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    user_not_found(done.rows_affected())
                })
            })
            .await
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM users WHERE id = ?")
                        .bind(id.0)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    user_not_found(done.rows_affected())?;
                    sqlx::query("DELETE FROM tokens WHERE user_id = ?")
                        .bind(id.0)
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users \
             WHERE (?1 IS NULL OR username > ?1) \
               AND (?2 IS NULL OR instr(search, ?2) > 0) \
             ORDER BY username LIMIT ?3"
        );
        sqlx::query(sql)
            .bind(&query.after_username)
            .bind(query.search.as_deref().map(fold))
            .bind(i64::from(query.limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::user)
            .collect()
    }
}

async fn insert_token(
    c: &mut SqliteConnection,
    token: &IssuedToken,
    kind: TokenKind,
    session: SessionId,
    user: UserId,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tokens (hash, kind, session_id, user_id, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(token.hash.as_bytes().as_slice())
    .bind(codec::token_kind(kind))
    .bind(session.0)
    .bind(user.0)
    .bind(micros(token.expires_at))
    .execute(c)
    .await
    .map_err(map_err)?;
    Ok(())
}

macro_rules! token_columns {
    () => {
        "hash, kind, session_id, user_id, expires_at, rotated"
    };
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<()> {
        let session = session.clone();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let (id, user) = (session.session_id, session.user_id);
                    insert_token(c, &session.access, TokenKind::Access, id, user).await?;
                    insert_token(c, &session.refresh, TokenKind::Refresh, id, user).await
                })
            })
            .await
    }

    async fn token(&self, hash: &TokenHash) -> StoreResult<Option<TokenRecord>> {
        let sql = concat!("SELECT ", token_columns!(), " FROM tokens WHERE hash = ?");
        sqlx::query(sql)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?
            .map(|row| codec::token(&row))
            .transpose()
    }

    async fn rotate_refresh_token(&self, exchange: &TokenExchange) -> StoreResult<Rotation> {
        let exchange = exchange.clone();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let sql = concat!("SELECT ", token_columns!(), " FROM tokens WHERE hash = ?");
                    let row = sqlx::query(sql)
                        .bind(exchange.presented.as_bytes().as_slice())
                        .fetch_optional(&mut *c)
                        .await
                        .map_err(map_err)?;
                    let Some(token) = row.map(|row| codec::token(&row)).transpose()? else {
                        return Ok(Rotation::Invalid);
                    };
                    let session = token.session_id;
                    if token.kind != TokenKind::Refresh {
                        return Ok(Rotation::Invalid);
                    }
                    if token.rotated {
                        sqlx::query("DELETE FROM tokens WHERE session_id = ?")
                            .bind(session.0)
                            .execute(&mut *c)
                            .await
                            .map_err(map_err)?;
                        return Ok(Rotation::Reused {
                            session_id: session,
                            user_id: token.user_id,
                        });
                    }
                    if token.expires_at <= exchange.at {
                        return Ok(Rotation::Invalid);
                    }
                    sqlx::query("DELETE FROM tokens WHERE session_id = ? AND kind = 0")
                        .bind(session.0)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    sqlx::query("UPDATE tokens SET rotated = 1 WHERE hash = ?")
                        .bind(exchange.presented.as_bytes().as_slice())
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    let user = token.user_id;
                    insert_token(c, &exchange.access, TokenKind::Access, session, user).await?;
                    insert_token(c, &exchange.refresh, TokenKind::Refresh, session, user).await?;
                    Ok(Rotation::Rotated {
                        session_id: session,
                        user_id: user,
                    })
                })
            })
            .await
    }

    async fn insert_ticket(
        &self,
        ticket: &IssuedToken,
        session: SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let ticket = ticket.clone();
        // One statement: the login's check and the insert cannot be torn apart.
        self.writer
            .write_one_statement(move |c| {
                Box::pin(async move {
                    let done = sqlx::query(concat!(
                        "INSERT INTO tokens (hash, kind, session_id, user_id, expires_at) ",
                        "SELECT ?, 2, ?, ?, ? WHERE EXISTS (SELECT 1 FROM tokens ",
                        "WHERE session_id = ? AND kind IN (0, 1) AND NOT rotated AND expires_at > ?)"
                    ))
                    .bind(ticket.hash.as_bytes().as_slice())
                    .bind(session.0)
                    .bind(user.0)
                    .bind(micros(ticket.expires_at))
                    .bind(session.0)
                    .bind(micros(now))
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    Ok(done.rows_affected() == 1)
                })
            })
            .await
    }

    async fn take_ticket(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TokenRecord>> {
        let hash = *hash;
        let taken = self
            .writer
            .write_one_statement(move |c| {
                Box::pin(async move {
                    let sql = concat!(
                        "DELETE FROM tokens WHERE hash = ? AND kind = 2 RETURNING ",
                        token_columns!()
                    );
                    sqlx::query(sql)
                        .bind(hash.as_bytes().as_slice())
                        .fetch_optional(c)
                        .await
                        .map_err(map_err)?
                        .map(|row| codec::token(&row))
                        .transpose()
                })
            })
            .await?;
        Ok(taken.filter(|ticket| ticket.expires_at > now))
    }

    async fn session_active(&self, session: SessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM tokens WHERE session_id = ? AND kind IN (0, 1) AND NOT rotated \
             AND expires_at > ? LIMIT 1",
        )
        .bind(session.0)
        .bind(micros(now))
        .fetch_optional(&self.readers)
        .await
        .map_err(map_err)?;
        Ok(row.is_some())
    }

    async fn revoke_session(&self, session: SessionId) -> StoreResult<()> {
        let sql = "DELETE FROM tokens WHERE session_id = ?";
        self.delete_tokens(sql, session.0).await.map(drop)
    }

    async fn revoke_user_sessions(&self, user: UserId) -> StoreResult<()> {
        let sql = "DELETE FROM tokens WHERE user_id = ?";
        self.delete_tokens(sql, user.0).await.map(drop)
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.purge("DELETE FROM tokens WHERE expires_at < ?", now)
            .await
    }
}

impl SqliteStore {
    async fn delete_tokens(&self, sql: &'static str, id: uuid::Uuid) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query(sql)
                        .bind(id)
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    Ok(done.rows_affected())
                })
            })
            .await
    }
}
