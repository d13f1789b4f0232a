//! Users, the directory, and password authentication.

use super::{Chat, expiry};
use crate::auth::{
    Authenticated, LoginName, LoginOutcome, Ticket, TokenHash, TokenPair, new_token,
};
use crate::error::Field;
use crate::error::{Denied, Error, Result};
use crate::events::Event;
use crate::ids::{SessionId, UserId};
use crate::page::Page;
use crate::room::RoomKind;
use crate::store::{
    Attempt, IssuedToken, NewSession, RoomQuery, Rotation, TokenExchange, TokenKind, UserQuery,
};
use crate::user::{DirectoryEntry, NewUser, PasswordChange, Profile, User, UserUpdate, UserView};
use crate::validate;

const MAX_PROFILE_FIELD: usize = 200;
const MAX_STATUS: usize = 200;
const MAX_DISPLAY_NAME: usize = 64;

fn profile(profile: &Profile) -> Result<Profile> {
    Ok(Profile {
        first_name: validate::optional_line(
            Field::ProfileFirstName,
            profile.first_name.as_deref(),
            MAX_PROFILE_FIELD,
        )?,
        last_name: validate::optional_line(
            Field::ProfileLastName,
            profile.last_name.as_deref(),
            MAX_PROFILE_FIELD,
        )?,
        phone: validate::optional_line(Field::ProfilePhone, profile.phone.as_deref(), 40)?,
        address: validate::optional_line(
            Field::ProfileAddress,
            profile.address.as_deref(),
            MAX_PROFILE_FIELD,
        )?,
        bio: validate::optional_line(Field::ProfileBio, profile.bio.as_deref(), 1000)?,
    })
}

impl Chat {
    /// Registers a user who logs in with a password. Never an admin.
    ///
    /// Errors: `Invalid` (username, email, display_name, profile, password);
    /// `Conflict(UsernameTaken | EmailTaken)`.
    pub async fn register(&self, new: NewUser, password: &str) -> Result<User> {
        validate::password(password, self.config.min_password_chars)?;
        let user = self.new_user(new, false)?;
        let hash = self.hasher.hash(password).await?;
        self.store.insert_user(&user, Some(&hash)).await?;
        Ok(user)
    }

    /// Creates a user without a password, for a host application that authenticates its users
    /// itself and passes their ids to every call.
    pub async fn create_user(&self, new: NewUser) -> Result<User> {
        let user = self.new_user(new, false)?;
        self.store.insert_user(&user, None).await?;
        Ok(user)
    }

    /// Creates an admin, with or without a password: for the host's own bootstrap, never for
    /// requests from outside.
    pub async fn create_admin(&self, new: NewUser, password: Option<&str>) -> Result<User> {
        let user = self.new_user(new, true)?;
        let hash = match password {
            Some(password) => {
                validate::password(password, self.config.min_password_chars)?;
                Some(self.hasher.hash(password).await?)
            }
            None => None,
        };
        self.store.insert_user(&user, hash.as_deref()).await?;
        Ok(user)
    }

    fn new_user(&self, new: NewUser, is_admin: bool) -> Result<User> {
        let username = validate::username(&new.username)?;
        let display_name = match new.display_name.as_deref() {
            Some(name) => validate::line(Field::DisplayName, name, 1, MAX_DISPLAY_NAME)?,
            None => username.clone(),
        };
        let now = self.now();
        Ok(User {
            id: UserId(self.ids.next_id()),
            email: new.email.as_deref().map(validate::email).transpose()?,
            display_name,
            profile: profile(&new.profile)?,
            status: Default::default(),
            status_message: None,
            is_admin,
            created_at: now,
            updated_at: now,
            username,
        })
    }

    /// Logs in with a username or email and a password.
    ///
    /// An unknown user and a wrong password give the same [`Error::Unauthenticated`] after the
    /// same work (an unknown user is checked against a dummy hash).
    ///
    /// After [`ChatConfig::failed_logins_allowed`](crate::ChatConfig::failed_logins_allowed)
    /// failures within the window, attempts are refused with [`Error::RateLimited`] until the
    /// window ends, without checking the password. The budget is the account's, whether it is
    /// named by username or email (an unknown name has its own, so refusals do not reveal which
    /// names exist); it is counted in the store before the password is checked, so concurrent
    /// attempts from any number of processes cannot exceed it. A success clears it.
    pub async fn login(&self, name: LoginName, password: &str) -> Result<LoginOutcome> {
        let (user, tried) = match &name {
            LoginName::Username(username) => {
                let username = username.to_ascii_lowercase();
                (self.store.user_by_username(&username).await?, username)
            }
            LoginName::Email(email) => {
                let email = email.trim().to_lowercase();
                (self.store.user_by_email(&email).await?, email)
            }
        };
        // An unknown name is keyed by its hash: the key's size does not depend on the input.
        let account = match &user {
            Some(user) => format!("login:{}", user.id),
            None => format!("login-name:{}", TokenHash::of(&tried).to_hex()),
        };
        self.count_attempt(&account).await?;
        let hash = match &user {
            Some(user) => self.store.password_hash(user.id).await?,
            None => None,
        };
        let valid = self.hasher.verify(password, hash).await?;
        let Some(user) = user.filter(|_| valid) else {
            return Err(Error::Unauthenticated);
        };
        self.clear_attempts(&account).await?;
        let (tokens, access, refresh) = self.issue_tokens();
        self.store
            .insert_session(&NewSession {
                session_id: SessionId(self.ids.next_id()),
                user_id: user.id,
                access,
                refresh,
            })
            .await?;
        Ok(LoginOutcome { tokens, user })
    }

    /// Counts an attempt at a secret (a login's password, a room's) against the key's budget
    /// of [`ChatConfig::failed_logins_allowed`](crate::ChatConfig::failed_logins_allowed);
    /// refuses it when none is left.
    pub(super) async fn count_attempt(&self, key: &str) -> Result<()> {
        let config = &self.config;
        self.spend(
            key,
            config.failed_logins_allowed,
            config.failed_login_window,
        )
        .await
    }

    /// Spends one of `allowed` uses of `key` within `window`, counted in the store so every
    /// process shares the budget; `RateLimited` when none is left. `allowed` 0: no limit.
    pub(super) async fn spend(
        &self,
        key: &str,
        allowed: u32,
        window: std::time::Duration,
    ) -> Result<()> {
        if allowed == 0 {
            return Ok(());
        }
        let now = self.now();
        let attempt = Attempt {
            key: key.to_owned(),
            allowed,
            at: now,
            window_end: expiry(now, window),
        };
        match self.store.count_attempt(attempt).await? {
            None => Ok(()),
            Some(end) => Err(Error::RateLimited {
                retry_after: (end - now).to_std().unwrap_or_default(),
            }),
        }
    }

    /// After a success: the key's failures are forgotten.
    pub(super) async fn clear_attempts(&self, key: &str) -> Result<()> {
        if self.config.failed_logins_allowed > 0 {
            self.store.clear_attempts(key).await?;
        }
        Ok(())
    }

    /// A single-use ticket that opens one live feed for this login
    /// ([`Chat::subscribe_with_ticket`]) within
    /// [`ChatConfig::ticket_ttl`](crate::ChatConfig::ticket_ttl): for browsers, whose
    /// WebSockets cannot send an `Authorization` header. Stored only as a hash, redeemable
    /// from any engine on the store; it dies with its login.
    ///
    /// Errors: `Unauthenticated` when the login has ended.
    pub async fn issue_ticket(&self, login: Authenticated) -> Result<Ticket> {
        let now = self.now();
        let (ticket, hash) = new_token();
        let issued = IssuedToken {
            hash,
            expires_at: expiry(now, self.config.ticket_ttl),
        };
        let stored = self
            .store
            .insert_ticket(&issued, login.session_id, login.user_id, now)
            .await?;
        if !stored {
            return Err(Error::Unauthenticated);
        }
        Ok(Ticket {
            ticket,
            expires_at: issued.expires_at,
        })
    }

    /// Announces that a login ended (or every login of the user, with `None`), so every
    /// subscription of it ends, on every engine.
    fn login_ended(&self, user_id: UserId, session_id: Option<SessionId>) {
        // This engine's cache at once; the others when the event reaches them.
        self.tokens.forget(user_id, session_id);
        self.publish(Event::LoginEnded {
            user_id,
            session_id,
        });
    }

    fn issue_tokens(&self) -> (TokenPair, IssuedToken, IssuedToken) {
        let now = self.now();
        let (access_token, access_hash) = new_token();
        let (refresh_token, refresh_hash) = new_token();
        let pair = TokenPair {
            access_token,
            refresh_token,
            access_expires_at: expiry(now, self.config.access_token_ttl),
            refresh_expires_at: expiry(now, self.config.refresh_token_ttl),
        };
        let access = IssuedToken {
            hash: access_hash,
            expires_at: pair.access_expires_at,
        };
        let refresh = IssuedToken {
            hash: refresh_hash,
            expires_at: pair.refresh_expires_at,
        };
        (pair, access, refresh)
    }

    /// Who an access token authenticates. Unknown, expired and revoked tokens, and refresh
    /// tokens, are all [`Error::Unauthenticated`].
    ///
    /// Tokens once checked are cached by the engine (see [`ChatConfig::token_cache_size`]):
    /// a logout, refresh or password change on any engine ends them here too.
    ///
    /// [`ChatConfig::token_cache_size`]: crate::ChatConfig::token_cache_size
    pub async fn authenticate(&self, access_token: &str) -> Result<Authenticated> {
        let hash = TokenHash::of(access_token);
        let now = self.now();
        let miss = match self.tokens.get(&hash, now) {
            Ok(login) => return Ok(login),
            Err(miss) => miss,
        };
        match self.store.token(&hash).await? {
            Some(token) if token.kind == TokenKind::Access && token.expires_at > now => {
                let login = Authenticated {
                    user_id: token.user_id,
                    session_id: token.session_id,
                };
                self.tokens.insert(miss, hash, login, now, token.expires_at);
                Ok(login)
            }
            _ => Err(Error::Unauthenticated),
        }
    }

    /// Exchanges a refresh token for a new pair. The old refresh token and the old access token
    /// stop working; presenting an already exchanged refresh token again revokes the whole login.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let (pair, access, refresh) = self.issue_tokens();
        let exchange = TokenExchange {
            presented: TokenHash::of(refresh_token),
            access,
            refresh,
            at: self.now(),
        };
        let rotation = self.store.rotate_refresh_token(&exchange).await?;
        match rotation {
            Rotation::Rotated {
                session_id,
                user_id,
            } => {
                // The old access token stopped working: out of every engine's cache.
                self.tokens.forget(user_id, Some(session_id));
                self.publish(Event::LoginRefreshed {
                    user_id,
                    session_id,
                });
                Ok(pair)
            }
            Rotation::Reused {
                session_id,
                user_id,
            } => {
                tracing::warn!(%session_id, "refresh token replayed; login revoked");
                self.login_ended(user_id, Some(session_id));
                Err(Error::Unauthenticated)
            }
            Rotation::Invalid => Err(Error::Unauthenticated),
        }
    }

    /// Revokes the login an access token belongs to, at once, on every engine: its feeds end.
    pub async fn logout(&self, access_token: &str) -> Result<()> {
        let auth = self.authenticate(access_token).await?;
        self.store.revoke_session(auth.session_id).await?;
        self.login_ended(auth.user_id, Some(auth.session_id));
        Ok(())
    }

    /// Changes the actor's password, given the current one; every login of the actor ends.
    pub async fn change_password(&self, actor: UserId, current: &str, new: &str) -> Result<()> {
        let update = UserUpdate {
            password: Some(PasswordChange::new(current, new)),
            ..UserUpdate::default()
        };
        self.update_user(actor, actor, update).await.map(drop)
    }

    /// The hash of the new password of a change `me` asks for on user `id`, once the change is
    /// allowed: only the user changes its password, the new one is strong enough, the current
    /// one is right.
    async fn checked_password_change(
        &self,
        me: &User,
        id: UserId,
        change: &PasswordChange,
    ) -> Result<String> {
        if me.id != id {
            return Err(Error::Forbidden(Denied::NotOwnPassword));
        }
        validate::password(&change.new, self.config.min_password_chars)?;
        let hash = self.store.password_hash(id).await?;
        if !self.hasher.verify(&change.current, hash).await? {
            return Err(Error::Forbidden(Denied::WrongCurrentPassword));
        }
        self.hasher.hash(&change.new).await
    }

    /// A user's full record: oneself, or anyone for an admin.
    pub async fn user(&self, actor: UserId, id: UserId) -> Result<User> {
        let me = self.actor(actor).await?;
        if me.id != id && !me.is_admin {
            return Err(Error::Forbidden(Denied::NotAdmin));
        }
        self.user_exists(id).await
    }

    /// A user as the actor may see them: the full record for oneself and for admins, the
    /// public face for everyone else.
    pub async fn user_view(&self, actor: UserId, id: UserId) -> Result<UserView> {
        let me = self.actor(actor).await?;
        let user = self.user_exists(id).await?;
        Ok(if me.id == id || me.is_admin {
            UserView::Full(user)
        } else {
            UserView::Public(user.directory_entry())
        })
    }

    /// The public face of any user, to start a conversation.
    pub async fn directory_entry(&self, actor: UserId, id: UserId) -> Result<DirectoryEntry> {
        self.actor(actor).await?;
        Ok(self.user_exists(id).await?.directory_entry())
    }

    /// The user with this username (any case), for a host that maps its own accounts to chat
    /// users (an `Authenticator`, say). No acting user and no permission check: never answer
    /// an end user's request with it.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<User>> {
        let username = username.trim().to_ascii_lowercase();
        Ok(self.store.user_by_username(&username).await?)
    }

    /// The public directory, ordered by username: users whose username or display name contains
    /// `search`, after the username cursor `after`.
    pub async fn directory(
        &self,
        actor: UserId,
        search: Option<&str>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<DirectoryEntry, String>> {
        let users = self.find_users(actor, search, after, limit).await?;
        Ok(users.map(|user| user.directory_entry()))
    }

    /// Every field of every user, ordered by username: admins only.
    pub async fn list_users(
        &self,
        actor: UserId,
        search: Option<&str>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<User, String>> {
        if !self.actor(actor).await?.is_admin {
            return Err(Error::Forbidden(Denied::NotAdmin));
        }
        self.find_users(actor, search, after, limit).await
    }

    async fn find_users(
        &self,
        actor: UserId,
        search: Option<&str>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<User, String>> {
        self.actor(actor).await?;
        let limit = self.page_limit(limit)?;
        let query = UserQuery {
            search: validate::optional_line(Field::Search, search, 100)?,
            after_username: after.map(str::to_ascii_lowercase),
            limit: limit + 1,
        };
        let users = self.store.list_users(&query).await?;
        Ok(Page::cut(users, limit, |user| user.username.clone()))
    }

    /// Changes a user: oneself, or anyone for an admin. Only admins grant or take admin rights,
    /// and never their own. A change of status is published to every room of the user.
    ///
    /// `Conflict(EmailTaken)` tells that an address is registered, so users other than admins
    /// change their email like they log in: at most
    /// [`ChatConfig::failed_logins_allowed`](crate::ChatConfig::failed_logins_allowed) times
    /// per window, taken or not, then `RateLimited`.
    pub async fn update_user(&self, actor: UserId, id: UserId, update: UserUpdate) -> Result<User> {
        let me = self.actor(actor).await?;
        if me.id != id && !me.is_admin {
            return Err(Error::Forbidden(Denied::NotAdmin));
        }
        if update.is_admin.is_some() && (!me.is_admin || me.id == id) {
            return Err(Error::Forbidden(Denied::OwnAdminRights));
        }
        let mut user = self.user_exists(id).await?;
        let before = user.clone();
        if let Some(name) = &update.display_name {
            user.display_name = validate::line(Field::DisplayName, name, 1, MAX_DISPLAY_NAME)?;
        }
        if let Some(email) = &update.email {
            user.email = email.as_deref().map(validate::email).transpose()?;
        }
        if let Some(fields) = &update.profile {
            user.profile = profile(fields)?;
        }
        if let Some(status) = update.status {
            user.status = status;
        }
        if let Some(status) = &update.status_message {
            user.status_message =
                validate::optional_line(Field::StatusMessage, status.as_deref(), MAX_STATUS)?;
        }
        if let Some(is_admin) = update.is_admin {
            user.is_admin = is_admin;
        }
        // Everything is checked before anything is written: a refused update changes nothing.
        let new_password_hash = match &update.password {
            Some(change) => Some(self.checked_password_change(&me, id, change).await?),
            None => None,
        };
        if user.email != before.email && !me.is_admin {
            // Counted whatever the answer: clearing on success would let a guesser reset
            // the budget with an address of its own.
            self.count_attempt(&format!("email:{id}")).await?;
        }
        if user != before {
            user.updated_at = self.now();
            self.store.update_user(&user).await?;
        }
        if let Some(hash) = new_password_hash {
            self.store.set_password_hash(id, Some(&hash)).await?;
            self.store.revoke_user_sessions(id).await?;
            self.login_ended(id, None);
        }
        if user.status != before.status || user.status_message != before.status_message {
            self.node.announce(id).await?;
        }
        Ok(user)
    }

    /// Deletes a user: oneself, or anyone for an admin. The user leaves every group room first
    /// (handing on ownership as [`Chat::leave_room`] does); their messages stay, and direct
    /// conversations keep them as the other side's history. Every login ends.
    pub async fn delete_user(&self, actor: UserId, id: UserId) -> Result<()> {
        let me = self.actor(actor).await?;
        if me.id != id && !me.is_admin {
            return Err(Error::Forbidden(Denied::NotAdmin));
        }
        self.user_exists(id).await?;
        for (room, _) in self.store.rooms_of_user(id, &RoomQuery::ALL).await? {
            if room.kind == RoomKind::Group {
                self.depart(room.id, id, None).await?;
            }
        }
        self.store.delete_user(id).await?;
        self.login_ended(id, None);
        Ok(())
    }
}
