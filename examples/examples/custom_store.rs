//! custom-store: implement the storage traits for a new backend, and prove it correct with the
//! conformance suite. This one wraps another store and counts every call (a tracing or caching
//! layer has the same shape); a real backend maps each method onto its database instead.
//!
//! Run it with `cargo run -p examples --example custom_store`; run the conformance suite on it
//! with `cargo test -p examples --example custom_store`.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chat_core::auth::TokenHash;
use chat_core::store::*;
use chat_core::*;
use chrono::{DateTime, Utc};

/// A store that counts the calls it forwards to `inner`.
#[derive(Default)]
pub struct CountingStore {
    inner: MemoryStore,
    calls: AtomicU64,
}

impl CountingStore {
    fn count(&self) -> &MemoryStore {
        self.calls.fetch_add(1, Ordering::Relaxed);
        &self.inner
    }
}

// Each trait's contract (what is atomic, which error each failure gives) is in its docs; a
// wrapper keeps it by forwarding, a backend by honouring it, and the suite checks either.
#[async_trait]
impl UserStore for CountingStore {
    async fn insert_user(&self, user: &User, hash: Option<&str>) -> StoreResult<()> {
        self.count().insert_user(user, hash).await
    }
    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        self.count().user(id).await
    }
    async fn user_by_username(&self, name: &str) -> StoreResult<Option<User>> {
        self.count().user_by_username(name).await
    }
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.count().user_by_email(email).await
    }
    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        self.count().password_hash(id).await
    }
    async fn set_password_hash(&self, id: UserId, hash: Option<&str>) -> StoreResult<()> {
        self.count().set_password_hash(id, hash).await
    }
    async fn update_user(&self, user: &User) -> StoreResult<()> {
        self.count().update_user(user).await
    }
    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        self.count().delete_user(id).await
    }
    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        self.count().list_users(query).await
    }
}

#[async_trait]
impl SessionStore for CountingStore {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<()> {
        self.count().insert_session(session).await
    }
    async fn token(&self, hash: &TokenHash) -> StoreResult<Option<TokenRecord>> {
        self.count().token(hash).await
    }
    async fn rotate_refresh_token(&self, exchange: &TokenExchange) -> StoreResult<Rotation> {
        self.count().rotate_refresh_token(exchange).await
    }
    async fn insert_ticket(
        &self,
        ticket: &IssuedToken,
        session: SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.count().insert_ticket(ticket, session, user, now).await
    }
    async fn take_ticket(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TokenRecord>> {
        self.count().take_ticket(hash, now).await
    }
    async fn session_active(&self, session: SessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        self.count().session_active(session, now).await
    }
    async fn revoke_session(&self, session: SessionId) -> StoreResult<()> {
        self.count().revoke_session(session).await
    }
    async fn revoke_user_sessions(&self, user: UserId) -> StoreResult<()> {
        self.count().revoke_user_sessions(user).await
    }
    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.count().purge_expired_tokens(now).await
    }
}

#[async_trait]
impl RoomStore for CountingStore {
    async fn create_room(&self, room: &Room, owner: &Member) -> StoreResult<()> {
        self.count().create_room(room, owner).await
    }
    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.count().room(id).await
    }
    async fn room_by_alias(&self, alias: &str) -> StoreResult<Option<Room>> {
        self.count().room_by_alias(alias).await
    }
    async fn update_room(&self, room: &Room) -> StoreResult<()> {
        self.count().update_room(room).await
    }
    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        self.count().delete_room(id).await
    }
    async fn list_public_rooms(&self, query: &RoomQuery) -> StoreResult<Vec<Room>> {
        self.count().list_public_rooms(query).await
    }
    async fn list_rooms(&self, after: Option<RoomId>, limit: u32) -> StoreResult<Vec<Room>> {
        self.count().list_rooms(after, limit).await
    }
    async fn repair_counters(&self, seen: SeenCounters, fixed: RoomCounters) -> StoreResult<bool> {
        self.count().repair_counters(seen, fixed).await
    }
    async fn rooms_of_user(
        &self,
        user: UserId,
        query: &RoomQuery,
    ) -> StoreResult<Vec<(Room, Member)>> {
        self.count().rooms_of_user(user, query).await
    }
    async fn find_or_create_direct(
        &self,
        room: &Room,
        members: [&Member; 2],
    ) -> StoreResult<(Room, bool)> {
        self.count().find_or_create_direct(room, members).await
    }
    async fn direct_room(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>> {
        self.count().direct_room(a, b).await
    }
}

#[async_trait]
impl MemberStore for CountingStore {
    async fn add_member(&self, member: &Member) -> StoreResult<Member> {
        self.count().add_member(member).await
    }
    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<Departure> {
        self.count().remove_member(room, user).await
    }
    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        self.count().member(room, user).await
    }
    async fn members(&self, room: RoomId, query: &MemberQuery) -> StoreResult<Vec<Member>> {
        self.count().members(room, query).await
    }
    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> StoreResult<Member> {
        self.count().set_role(room, user, role).await
    }
    async fn transfer_ownership(&self, room: RoomId, to: UserId) -> StoreResult<()> {
        self.count().transfer_ownership(room, to).await
    }
}

#[async_trait]
impl MessageStore for CountingStore {
    async fn append_message(&self, message: &NewStoredMessage) -> StoreResult<Sent> {
        self.count().append_message(message).await
    }
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        self.count().message(id).await
    }
    async fn edit_message(
        &self,
        id: MessageId,
        body: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Message> {
        self.count().edit_message(id, body, at).await
    }
    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> StoreResult<Message> {
        self.count().delete_message(id, at).await
    }
    async fn messages(&self, room: RoomId, range: SeqRange) -> StoreResult<Vec<Message>> {
        self.count().messages(room, range).await
    }
    async fn changes(&self, room: RoomId, after: u64, limit: u32) -> StoreResult<Vec<Message>> {
        self.count().changes(room, after, limit).await
    }
    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<Message>> {
        self.count().search(query).await
    }
    async fn mentions(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        self.count().mentions(user, before, limit).await
    }
    async fn replace_unread_mentions(
        &self,
        seen: SeenCounters,
        mentions: &[Mention],
    ) -> StoreResult<bool> {
        self.count().replace_unread_mentions(seen, mentions).await
    }
    async fn mentions_between(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<Mention>> {
        self.count().mentions_between(room, seqs).await
    }
}

#[async_trait]
impl ImportStore for CountingStore {
    async fn import_mark(&self) -> StoreResult<Option<String>> {
        self.count().import_mark().await
    }
    async fn set_import_mark(&self, mark: Option<&str>) -> StoreResult<()> {
        self.count().set_import_mark(mark).await
    }
    async fn import_room(&self, room: &Room) -> StoreResult<()> {
        self.count().import_room(room).await
    }
    async fn import_members(&self, room: RoomId, members: &[Member]) -> StoreResult<()> {
        self.count().import_members(room, members).await
    }
    async fn import_messages(
        &self,
        room: RoomId,
        messages: &[Message],
        mentions: &[Mention],
    ) -> StoreResult<()> {
        self.count().import_messages(room, messages, mentions).await
    }
    async fn import_reactions(
        &self,
        room: RoomId,
        reactions: &[(u64, String, UserId)],
    ) -> StoreResult<()> {
        self.count().import_reactions(room, reactions).await
    }
    async fn import_thread_markers(
        &self,
        room: RoomId,
        markers: &[ThreadMarker],
    ) -> StoreResult<()> {
        self.count().import_thread_markers(room, markers).await
    }
    async fn finish_room_import(&self, room: &Room) -> StoreResult<()> {
        self.count().finish_room_import(room).await
    }
}

#[async_trait]
impl ThreadStore for CountingStore {
    async fn replies(
        &self,
        room: RoomId,
        root: MessageId,
        range: SeqRange,
    ) -> StoreResult<Vec<Message>> {
        self.count().replies(room, root, range).await
    }
    async fn threads(
        &self,
        room: RoomId,
        viewer: UserId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<Thread>> {
        self.count().threads(room, viewer, before, limit).await
    }
    async fn mark_thread_read(
        &self,
        room: RoomId,
        root: MessageId,
        user: UserId,
        seq: u64,
    ) -> StoreResult<u64> {
        self.count().mark_thread_read(room, root, user, seq).await
    }
    async fn thread_markers(&self, room: RoomId) -> StoreResult<Vec<ThreadMarker>> {
        self.count().thread_markers(room).await
    }
    async fn repair_thread(
        &self,
        seen: SeenCounters,
        root: MessageId,
        summary: Option<&ThreadSummary>,
    ) -> StoreResult<bool> {
        self.count().repair_thread(seen, root, summary).await
    }
}

#[async_trait]
impl ReactionStore for CountingStore {
    async fn add_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
        max_keys: u32,
    ) -> StoreResult<Option<Message>> {
        self.count().add_reaction(id, user, key, max_keys).await
    }
    async fn remove_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
    ) -> StoreResult<Option<Message>> {
        self.count().remove_reaction(id, user, key).await
    }
    async fn reactions(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
        viewer: UserId,
    ) -> StoreResult<Vec<(u64, Reaction)>> {
        self.count().reactions(room, seqs, viewer).await
    }
    async fn reactors(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<(u64, String, UserId)>> {
        self.count().reactors(room, seqs).await
    }
}

#[async_trait]
impl ReadMarkerStore for CountingStore {
    async fn advance_read_marker(&self, room: RoomId, user: UserId, seq: u64) -> StoreResult<u64> {
        self.count().advance_read_marker(room, user, seq).await
    }
    async fn unread_counts(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> StoreResult<Vec<UnreadCounts>> {
        self.count().unread_counts(user, room).await
    }
}

#[async_trait]
impl AttemptStore for CountingStore {
    async fn count_attempt(&self, attempt: Attempt) -> StoreResult<Option<DateTime<Utc>>> {
        self.count().count_attempt(attempt).await
    }
    async fn clear_attempts(&self, key: &str) -> StoreResult<()> {
        self.count().clear_attempts(key).await
    }
    async fn purge_attempts(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.count().purge_attempts(now).await
    }
}

#[async_trait]
impl ConnectionStore for CountingStore {
    async fn open_connection(&self, connection: &Connection) -> StoreResult<()> {
        self.count().open_connection(connection).await
    }
    async fn close_connection(&self, id: ConnectionId) -> StoreResult<()> {
        self.count().close_connection(id).await
    }
    async fn renew_connections(&self, node: NodeId, expires_at: DateTime<Utc>) -> StoreResult<()> {
        self.count().renew_connections(node, expires_at).await
    }
    async fn online_users(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<UserId>> {
        self.count().online_users(users, now).await
    }
    async fn purge_connections(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        self.count().purge_connections(now).await
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let store = Arc::new(CountingStore::default());
    let chat = Chat::new(store.clone());
    let alice = chat.create_user(NewUser::named("alice")).await?;
    let room = chat
        .create_room(alice.id, NewRoom::named("general"))
        .await?;
    chat.send(alice.id, room.id, NewMessage::text("hello"))
        .await?;
    println!(
        "3 operations took {} store calls",
        store.calls.load(Ordering::Relaxed)
    );
    Ok(())
}

// The whole conformance suite, one named test per case, each on a fresh store.
#[cfg(test)]
mod conformance {
    use super::*;

    async fn fresh() -> (Arc<dyn Store>, chat_core::testing::Guard) {
        (Arc::new(CountingStore::default()), Box::new(()))
    }

    chat_core::store_conformance_tests!(fresh);
}
