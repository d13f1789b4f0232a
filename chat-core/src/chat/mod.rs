//! [`Chat`], the one entry point: every operation takes the acting user first and checks its
//! permissions itself, so a front end only authenticates, translates and maps errors.

mod accounts;
mod connections;
mod direct_rooms;
mod handles;
mod messages;
mod reactions;
mod reads;
mod rooms;
mod search;
mod threads;
mod token_cache;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

pub(crate) use self::connections::Lease;
pub use self::handles::{AsUser, InRoom};
use crate::auth::{Authenticated, PasswordHasher, TokenHash};
use crate::clock::{Clock, SystemClock};
use crate::config::ChatConfig;
use crate::error::{Denied, Entity, Error, Result};
use crate::events::subscription::Opened;
use crate::events::{Event, EventBus, EventStream, InProcessBus, Subscription};
use crate::ids::{IdSource, SessionId, UserId, UuidV7};
use crate::room::{Member, Room, RoomKind, Visibility};
use crate::store::{RoomQuery, Store};
use crate::user::User;

/// The chat engine. Build one per store and share it: it is `Send + Sync`, and cloning it is
/// cheap (every part is shared), so each task or handler can hold its own.
///
/// ```
/// use std::sync::Arc;
/// use chat_core::{Chat, NewMessage, NewRoom, NewUser, store::MemoryStore};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let chat = Chat::new(Arc::new(MemoryStore::new()));
/// let alice = chat.create_user(NewUser::named("alice")).await?;
/// let room = chat.create_room(alice.id, NewRoom::named("general")).await?;
/// let sent = chat.send(alice.id, room.id, NewMessage::text("hello")).await?;
/// assert_eq!(sent.message.seq, 1);
/// # Ok::<_, chat_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Chat {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    node: Arc<connections::Node>,
    config: Arc<ChatConfig>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
    hasher: Arc<PasswordHasher>,
    tokens: Arc<token_cache::TokenCache>,
    direct_rooms: Arc<direct_rooms::DirectRooms>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Chat`] with other than the default settings.
pub struct ChatBuilder {
    store: Arc<dyn Store>,
    bus: Arc<dyn EventBus>,
    config: ChatConfig,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
}

impl ChatBuilder {
    /// Limits and settings (default: [`ChatConfig::default`]).
    pub fn config(mut self, config: ChatConfig) -> Self {
        self.config = config;
        self
    }

    /// The event bus (default: a new [`InProcessBus`]).
    pub fn bus(mut self, bus: Arc<dyn EventBus>) -> Self {
        self.bus = bus;
        self
    }

    /// The clock (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The source of new ids (default: [`UuidV7`]).
    pub fn ids(mut self, ids: Arc<dyn IdSource>) -> Self {
        self.ids = ids;
        self
    }

    /// The engine.
    ///
    /// Errors: `Invalid { field: Field::PasswordHashing }` for a cost Argon2 refuses.
    pub fn build(self) -> Result<Chat> {
        let params = self.config.password_hashing.params()?;
        Ok(self.finish(params))
    }

    fn finish(self, params: argon2::Params) -> Chat {
        Chat {
            hasher: Arc::new(PasswordHasher::new(
                params,
                self.config.max_concurrent_hashes,
                self.config.max_queued_hashes,
            )),
            node: connections::Node::new(
                Arc::clone(&self.store),
                Arc::clone(&self.clock),
                Arc::clone(&self.bus),
                &self.config,
            ),
            tokens: Arc::new(token_cache::TokenCache::new(
                self.config.token_cache_size,
                self.config.token_cache_ttl,
                Arc::clone(&self.bus),
            )),
            direct_rooms: Arc::default(),
            store: self.store,
            bus: self.bus,
            config: Arc::new(self.config),
            clock: self.clock,
            ids: self.ids,
        }
    }
}

impl Chat {
    /// An engine over `store` with default settings, an in-process bus and the system clock.
    pub fn new(store: Arc<dyn Store>) -> Self {
        // The default cost is Argon2's own default, which needs no checking (a unit test pins
        // that the two agree).
        Self::builder(store).finish(argon2::Params::default())
    }

    /// A builder for other settings, bus, clock or ids.
    pub fn builder(store: Arc<dyn Store>) -> ChatBuilder {
        ChatBuilder {
            store,
            bus: Arc::new(InProcessBus::default()),
            config: ChatConfig::default(),
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// A live feed of the events of every room `actor` belongs to, now and as it joins more,
    /// for a user the host authenticates itself. It ends when every login of the user ends
    /// (the account is deleted, the password changed). See [`Subscription`].
    pub async fn subscribe(&self, actor: UserId) -> Result<Subscription> {
        // Every feed subscribes to the bus before it reads anything, so that no change falls
        // between what it read and what it hears.
        let events = self.bus.subscribe();
        self.actor(actor).await?;
        self.open_feed(actor, None, events).await
    }

    /// A live feed for one login: like [`Chat::subscribe`], and it also ends when that login
    /// ends, on any engine.
    ///
    /// Errors: `Unauthenticated` when the login has already ended.
    pub async fn subscribe_login(&self, login: Authenticated) -> Result<Subscription> {
        let events = self.bus.subscribe();
        if !self
            .store
            .session_active(login.session_id, self.now())
            .await?
        {
            return Err(Error::Unauthenticated);
        }
        self.open_feed(login.user_id, Some(login.session_id), events)
            .await
    }

    /// A live feed for the login a ticket was issued to (see [`Chat::issue_ticket`]). The
    /// ticket is spent, whether or not the feed opens.
    ///
    /// Errors: `Unauthenticated` for an unknown, spent or expired ticket, or one whose login
    /// has ended.
    pub async fn subscribe_with_ticket(&self, ticket: &str) -> Result<Subscription> {
        let events = self.bus.subscribe();
        let ticket = self
            .store
            .take_ticket(&TokenHash::of(ticket), self.now())
            .await?
            .ok_or(Error::Unauthenticated)?;
        self.open_feed(ticket.user_id, Some(ticket.session_id), events)
            .await
    }

    async fn open_feed(
        &self,
        user: UserId,
        session: Option<SessionId>,
        events: EventStream,
    ) -> Result<Subscription> {
        let lease = self.node.connect(user).await?;
        let rooms = self
            .store
            .rooms_of_user(user, &RoomQuery::ALL)
            .await?
            .into_iter()
            .map(|(room, _)| (room.id, room.last_seq))
            .collect();
        let opened = Opened {
            user,
            session,
            rooms,
            gap_wait: self.config.gap_wait,
            lease,
        };
        Ok(Subscription::new(
            opened,
            events,
            Arc::clone(&self.store),
            Arc::clone(&self.clock),
        ))
    }

    /// Which of `users` are online: have a live [`Subscription`] on any engine on this store.
    pub async fn online(&self, actor: UserId, users: &[UserId]) -> Result<HashSet<UserId>> {
        self.actor(actor).await?;
        let online = self.store.online_users(users, self.now()).await?;
        Ok(online.into_iter().collect())
    }

    /// Deletes what has expired: tokens (rotated refresh tokens stay until then, to catch
    /// replays), failed-login windows, connections of engines that stopped. A server runs this
    /// now and then; returns how many records went.
    pub async fn purge_expired(&self) -> Result<u64> {
        let now = self.now();
        let tokens = self.store.purge_expired_tokens(now).await?;
        let attempts = self.store.purge_attempts(now).await?;
        let connections = self.store.purge_connections(now).await?;
        Ok(tokens + attempts + connections)
    }

    /// Whether the store answers: one read of a user who cannot exist. For health checks;
    /// a store that cannot be reached says `Storage(Unavailable)`.
    pub async fn check_store(&self) -> Result<()> {
        self.store.user(UserId(uuid::Uuid::nil())).await?;
        Ok(())
    }

    /// Whether the event bus reaches the other engines now ([`EventBus::is_connected`]). For
    /// health checks: while it does not, live events of other engines arrive late (caught up
    /// from the store when it is back).
    pub fn bus_connected(&self) -> bool {
        self.bus.is_connected()
    }

    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    fn publish(&self, event: Event) {
        self.bus.publish(Arc::new(event));
    }

    /// The acting user; an id that names nobody is not authenticated as anyone.
    async fn actor(&self, id: UserId) -> Result<User> {
        self.store.user(id).await?.ok_or(Error::Unauthenticated)
    }

    async fn user_exists(&self, id: UserId) -> Result<User> {
        self.store
            .user(id)
            .await?
            .ok_or(Error::NotFound(Entity::User))
    }

    async fn room_by_id(&self, id: crate::ids::RoomId) -> Result<Room> {
        self.store
            .room(id)
            .await?
            .ok_or(Error::NotFound(Entity::Room))
    }

    /// The room and the actor's membership in it, in one read.
    async fn room_and_member(
        &self,
        actor: UserId,
        room_id: crate::ids::RoomId,
    ) -> Result<(Room, Option<Member>)> {
        let (room, member) = self
            .store
            .room_with_member(room_id, actor)
            .await?
            .ok_or(Error::NotFound(Entity::Room))?;
        // A deleted user stays a member of its direct conversations, so that the other side
        // keeps the history, but acts in none of them. (Group rooms it has left.)
        if room.is_direct() && member.is_some() {
            self.actor(actor).await?;
        }
        Ok((room, member))
    }

    /// The room and the actor's membership, which reading and posting require.
    async fn membership(
        &self,
        actor: UserId,
        room_id: crate::ids::RoomId,
    ) -> Result<(Room, Member)> {
        match self.room_and_member(actor, room_id).await? {
            (room, Some(member)) => Ok((room, member)),
            (_, None) => Err(Error::Forbidden(Denied::NotMember)),
        }
    }

    /// Whether the actor may see the room's details: members always, anyone for public rooms.
    async fn visible_room(&self, actor: UserId, room_id: crate::ids::RoomId) -> Result<Room> {
        let (room, member) = self.room_and_member(actor, room_id).await?;
        let public = room.kind == RoomKind::Group && room.visibility == Visibility::Public;
        if public || member.is_some() {
            Ok(room)
        } else {
            Err(Error::Forbidden(Denied::NotMember))
        }
    }
}

/// `now + ttl`, saturating: a huge configured lifetime means "never expires", not a panic.
pub(crate) fn expiry(now: DateTime<Utc>, ttl: std::time::Duration) -> DateTime<Utc> {
    TimeDelta::from_std(ttl)
        .ok()
        .and_then(|ttl| now.checked_add_signed(ttl))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}
