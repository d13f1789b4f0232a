//! Users and login sessions.

use async_trait::async_trait;
use chat_core::auth::TokenHash;
use chat_core::store::{
    IssuedToken, NewSession, Rotation, SessionStore, TokenExchange, TokenKind, TokenRecord,
    UserQuery, UserStore, fold, user_search_text,
};
use chat_core::{Entity, SessionId, StoreError, User, UserId};
use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::PostgresStore;
use crate::codec::{self, StoreResult, map_err, profile_json, token_columns, user_columns};

fn user_not_found(rows: u64) -> StoreResult<()> {
    if rows == 0 {
        Err(StoreError::NotFound(Entity::User))
    } else {
        Ok(())
    }
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn insert_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO users (id, username, email, display_name, profile, presence, \
             status_message, is_admin, password_hash, created_at, updated_at, search) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(user.id.0)
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(profile_json(user)?)
        .bind(user.status.as_str())
        .bind(&user.status_message)
        .bind(user.is_admin)
        .bind(password_hash)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(user_search_text(&user.username, &user.display_name))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE id = $1");
        self.row_where(sql, id.0, codec::user).await
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username = $1"
        );
        self.row_where(sql, username, codec::user).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let sql = concat!("SELECT ", user_columns!(), " FROM users WHERE email = $1");
        self.row_where(sql, email, codec::user).await
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let hash: Option<Option<String>> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        Ok(hash.flatten())
    }

    async fn set_password_hash(&self, id: UserId, hash: Option<&str>) -> StoreResult<()> {
        let done = sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        user_not_found(done.rows_affected())
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE users SET username = $1, email = $2, display_name = $3, profile = $4, \
             presence = $5, status_message = $6, is_admin = $7, created_at = $8, \
             updated_at = $9, search = $10 WHERE id = $11",
        )
        .bind(&user.username)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(profile_json(user)?)
        .bind(user.status.as_str())
        .bind(&user.status_message)
        .bind(user.is_admin)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(user_search_text(&user.username, &user.display_name))
        .bind(user.id.0)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        user_not_found(done.rows_affected())
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        user_not_found(done.rows_affected())?;
        sqlx::query("DELETE FROM tokens WHERE user_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let sql = concat!(
            "SELECT ",
            user_columns!(),
            " FROM users \
             WHERE ($1::text IS NULL OR username > $1) \
               AND ($2::text IS NULL OR strpos(search, $2) > 0) \
             ORDER BY username LIMIT $3"
        );
        sqlx::query(sql)
            .bind(&query.after_username)
            .bind(query.search.as_deref().map(fold))
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::user)
            .collect()
    }
}

async fn insert_token(
    c: &mut PgConnection,
    token: &IssuedToken,
    kind: TokenKind,
    session: SessionId,
    user: UserId,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO tokens (hash, kind, session_id, user_id, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token.hash.as_bytes().as_slice())
    .bind(codec::token_kind(kind))
    .bind(session.0)
    .bind(user.0)
    .bind(token.expires_at)
    .execute(c)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl SessionStore for PostgresStore {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let (id, user) = (session.session_id, session.user_id);
        insert_token(&mut tx, &session.access, TokenKind::Access, id, user).await?;
        insert_token(&mut tx, &session.refresh, TokenKind::Refresh, id, user).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn token(&self, hash: &TokenHash) -> StoreResult<Option<TokenRecord>> {
        let sql = concat!("SELECT ", token_columns!(), " FROM tokens WHERE hash = $1");
        self.row_where(sql, hash.as_bytes().as_slice(), codec::token)
            .await
    }

    async fn rotate_refresh_token(&self, exchange: &TokenExchange) -> StoreResult<Rotation> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // FOR UPDATE: of two engines rotating one token, the second sees it rotated.
        let sql = concat!(
            "SELECT ",
            token_columns!(),
            " FROM tokens WHERE hash = $1 FOR UPDATE"
        );
        let row = sqlx::query(sql)
            .bind(exchange.presented.as_bytes().as_slice())
            .fetch_optional(&mut *tx)
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
            sqlx::query("DELETE FROM tokens WHERE session_id = $1")
                .bind(session.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
            return Ok(Rotation::Reused {
                session_id: session,
                user_id: token.user_id,
            });
        }
        if token.expires_at <= exchange.at {
            return Ok(Rotation::Invalid);
        }
        sqlx::query("DELETE FROM tokens WHERE session_id = $1 AND kind = 0")
            .bind(session.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("UPDATE tokens SET rotated = TRUE WHERE hash = $1")
            .bind(exchange.presented.as_bytes().as_slice())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let user = token.user_id;
        insert_token(&mut tx, &exchange.access, TokenKind::Access, session, user).await?;
        insert_token(
            &mut tx,
            &exchange.refresh,
            TokenKind::Refresh,
            session,
            user,
        )
        .await?;
        tx.commit().await.map_err(map_err)?;
        Ok(Rotation::Rotated {
            session_id: session,
            user_id: user,
        })
    }

    async fn insert_ticket(
        &self,
        ticket: &IssuedToken,
        session: SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // One statement: the login's check and the insert cannot be torn apart.
        let done = sqlx::query(
            "INSERT INTO tokens (hash, kind, session_id, user_id, expires_at) \
             SELECT $1, 2, $2, $3, $4 WHERE EXISTS (SELECT 1 FROM tokens \
             WHERE session_id = $2 AND kind IN (0, 1) AND NOT rotated AND expires_at > $5)",
        )
        .bind(ticket.hash.as_bytes().as_slice())
        .bind(session.0)
        .bind(user.0)
        .bind(ticket.expires_at)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn take_ticket(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TokenRecord>> {
        let sql = concat!(
            "DELETE FROM tokens WHERE hash = $1 AND kind = 2 RETURNING ",
            token_columns!()
        );
        let taken = sqlx::query(sql)
            .bind(hash.as_bytes().as_slice())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .map(|row| codec::token(&row))
            .transpose()?;
        Ok(taken.filter(|ticket| ticket.expires_at > now))
    }

    async fn session_active(&self, session: SessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 FROM tokens WHERE session_id = $1 AND kind IN (0, 1) AND NOT rotated \
             AND expires_at > $2 LIMIT 1",
        )
        .bind(session.0)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(row.is_some())
    }

    async fn revoke_session(&self, session: SessionId) -> StoreResult<()> {
        let sql = "DELETE FROM tokens WHERE session_id = $1";
        self.execute_with(sql, session.0).await.map(drop)
    }

    async fn revoke_user_sessions(&self, user: UserId) -> StoreResult<()> {
        let sql = "DELETE FROM tokens WHERE user_id = $1";
        self.execute_with(sql, user.0).await.map(drop)
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.purge("DELETE FROM tokens WHERE expires_at < $1", now)
            .await
    }
}
