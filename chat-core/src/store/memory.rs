//! [`MemoryStore`]: every storage trait over in-memory maps behind one lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::{Bound, RangeInclusive};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{
    Attempt, AttemptStore, Connection, ConnectionStore, Departure, ImportStore, IssuedToken,
    MemberQuery, MemberStore, Mention, MessageStore, NewSession, NewStoredMessage, ReactionStore,
    ReadMarkerStore, RoomCounters, RoomQuery, RoomStore, Rotation, SearchQuery, SeenCounters,
    SeqRange, SessionStore, StoreResult, ThreadStore, TokenExchange, TokenKind, TokenRecord,
    UserQuery, UserStore, fold, successor,
};
use crate::auth::TokenHash;
use crate::error::{Conflict, Entity, StoreError};
use crate::ids::{ConnectionId, MessageId, NodeId, RoomId, SessionId, UserId};
use crate::message::{Message, Reaction, Sent, Thread, ThreadSummary, UnreadCounts};
use crate::room::{Member, Role, Room, Visibility};
use crate::search;
use crate::user::User;

/// A complete store in memory: fast, safe under concurrency, gone when dropped.
///
/// Every operation takes one lock for its whole duration, so every operation is atomic. It is
/// the reference the conformance suite's model test compares other stores against.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // No operation panics while holding the lock, so a poisoned lock still holds
        // consistent data.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug, Default)]
struct Inner {
    users: HashMap<UserId, StoredUser>,
    usernames: BTreeMap<String, UserId>,
    emails: HashMap<String, UserId>,
    tokens: HashMap<TokenHash, TokenRecord>,
    rooms: BTreeMap<RoomId, RoomData>,
    aliases: HashMap<String, RoomId>,
    directs: HashMap<(UserId, UserId), RoomId>,
    rooms_by_user: HashMap<UserId, BTreeSet<RoomId>>,
    message_rooms: HashMap<MessageId, (RoomId, u64)>,
    txn_ids: HashMap<(UserId, String), MessageId>,
    /// Attempts counted per key, and when the key's window ends.
    attempts: HashMap<String, (u32, DateTime<Utc>)>,
    connections: HashMap<ConnectionId, Connection>,
    /// The mark of an unfinished import.
    import_mark: Option<String>,
}

#[derive(Debug)]
struct StoredUser {
    user: User,
    password_hash: Option<String>,
}

#[derive(Debug)]
struct RoomData {
    room: Room,
    members: HashMap<UserId, Member>,
    /// Messages by sequence number.
    history: BTreeMap<u64, Message>,
    /// Sequence numbers by change cursor; a message appears once, under its latest change.
    changes: BTreeMap<u64, u64>,
    /// Who reacted with each key, by sequence number and key; no empty sets.
    reactions: BTreeMap<(u64, String), BTreeSet<UserId>>,
    /// Who each message mentions (by name or as the room): member and sequence number.
    mentions: BTreeSet<(UserId, u64)>,
    /// The sequence numbers of each thread's replies, in order, by the root's.
    threads: HashMap<u64, Vec<u64>>,
    /// The roots of threads by their newest reply's sequence number.
    thread_activity: BTreeMap<u64, u64>,
    /// Members' markers in threads, by the root's sequence number and member.
    thread_markers: HashMap<(u64, UserId), ThreadMarker>,
}

/// A member's place in a thread: how many of its replies it has read, and whether it follows
/// the thread (its unread replies count in the member's totals).
#[derive(Debug, Default, Clone, Copy)]
struct ThreadMarker {
    read: u64,
    following: bool,
}

impl RoomData {
    fn new(room: Room) -> Self {
        Self {
            room,
            members: HashMap::new(),
            history: BTreeMap::new(),
            changes: BTreeMap::new(),
            reactions: BTreeMap::new(),
            mentions: BTreeSet::new(),
            threads: HashMap::new(),
            thread_activity: BTreeMap::new(),
            thread_markers: HashMap::new(),
        }
    }

    /// The replies in the thread of the root numbered `root`.
    fn replies(&self, root: u64) -> &[u64] {
        self.threads.get(&root).map_or(&[], Vec::as_slice)
    }

    /// Counts a new reply in the thread of the root numbered `root`: the root's summary, the
    /// thread's place among the room's threads and its followers' markers.
    fn count_reply(&mut self, root: u64, reply: &Message) {
        let Some(count) = self.count_in_thread(root, reply) else {
            return;
        };
        let Some(root_message) = self.history.get(&root) else {
            return;
        };
        let mut followers = vec![reply.sender, root_message.sender];
        followers.extend(&root_message.mentions);
        followers.extend(&reply.mentions);
        for user in followers {
            if !self.members.contains_key(&user) {
                continue;
            }
            let marker = self.thread_markers.entry((root, user)).or_default();
            marker.following = true;
            if user == reply.sender {
                marker.read = count;
            }
        }
    }

    /// Counts a reply in the root's summary and the thread's place among the room's threads;
    /// returns the thread's replies (`None` when there is no such root).
    fn count_in_thread(&mut self, root: u64, reply: &Message) -> Option<u64> {
        let root_message = self.history.get_mut(&root)?;
        root_message.thread = Some(ThreadSummary::counting(root_message.thread.take(), reply));
        let replies = self.threads.entry(root).or_default();
        if let Some(previous) = replies.last() {
            self.thread_activity.remove(previous);
        }
        replies.push(reply.seq);
        self.thread_activity.insert(reply.seq, root);
        Some(replies.len() as u64)
    }

    /// The replies left unread by a marker in the thread of the root numbered `root`.
    fn unread_replies(&self, root: u64, marker: Option<&ThreadMarker>) -> u64 {
        let count = self.replies(root).len() as u64;
        count - marker.map_or(0, |marker| marker.read)
    }
}

/// A page of `messages` (a room's or a thread's, ordered by sequence number) as `range` asks.
fn page<'a>(
    messages: impl DoubleEndedIterator<Item = &'a Message>,
    range: SeqRange,
) -> Vec<Message> {
    let within = |m: &&Message| {
        range.after.is_none_or(|after| m.seq > after)
            && range.before.is_none_or(|before| m.seq < before)
    };
    let limit = range.limit as usize;
    if range.after.is_some() {
        messages.filter(within).take(limit).cloned().collect()
    } else {
        let mut newest: Vec<Message> = messages.rev().filter(within).take(limit).cloned().collect();
        newest.reverse();
        newest
    }
}

fn direct_key(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b { (a, b) } else { (b, a) }
}

fn contains_folded(haystack: &str, needle_folded: &str) -> bool {
    fold(haystack).contains(needle_folded)
}

impl Inner {
    /// The room, if its counters are still `seen` (the counter check's repairs).
    fn room_as_seen(&mut self, seen: SeenCounters) -> StoreResult<Option<&mut RoomData>> {
        let data = self
            .rooms
            .get_mut(&seen.room)
            .ok_or(StoreError::NotFound(Entity::Room))?;
        Ok((RoomCounters::of(&data.room) == seen.counters).then_some(data))
    }

    fn delete_room(&mut self, id: RoomId) -> StoreResult<()> {
        let data = self
            .rooms
            .remove(&id)
            .ok_or(StoreError::NotFound(Entity::Room))?;
        if let Some(alias) = &data.room.alias {
            self.aliases.remove(alias);
        }
        self.directs.retain(|_, room| *room != id);
        for user in data.members.keys() {
            if let Some(rooms) = self.rooms_by_user.get_mut(user) {
                rooms.remove(&id);
            }
        }
        for message in data.history.values() {
            self.message_rooms.remove(&message.id);
            if let Some(txn_id) = &message.txn_id {
                self.txn_ids.remove(&(message.sender, txn_id.clone()));
            }
        }
        Ok(())
    }

    fn session_active(&self, session: SessionId, now: DateTime<Utc>) -> bool {
        self.tokens.values().any(|t| {
            t.session_id == session
                && t.kind != TokenKind::Ticket
                && !t.rotated
                && t.expires_at > now
        })
    }

    /// The checks of an append, in the order of the contract.
    fn may_append(&self, new: &NewStoredMessage) -> StoreResult<()> {
        let data = self
            .rooms
            .get(&new.room_id)
            .ok_or(StoreError::NotFound(Entity::Room))?;
        if !data.members.contains_key(&new.sender) || !self.users.contains_key(&new.sender) {
            return Err(StoreError::NotFound(Entity::Member));
        }
        if let Some(reply_to) = new.reply_to
            && self
                .message_rooms
                .get(&reply_to)
                .is_none_or(|(room, _)| *room != new.room_id)
        {
            return Err(StoreError::NotFound(Entity::Message));
        }
        if let Some(root) = new.thread_root {
            self.thread_root(new.room_id, root)?;
        }
        Ok(())
    }

    /// The sequence number of `root` if it may start a thread in `room`: a live message of the
    /// room that is not a reply in a thread.
    fn thread_root(&self, room: RoomId, root: MessageId) -> StoreResult<u64> {
        self.message_rooms
            .get(&root)
            .filter(|(in_room, _)| *in_room == room)
            .and_then(|(_, seq)| self.rooms.get(&room)?.history.get(seq))
            .filter(|root| !root.is_deleted() && root.thread_root.is_none())
            .map(|root| root.seq)
            .ok_or(StoreError::NotFound(Entity::Thread))
    }

    fn room_mut(&mut self, id: RoomId) -> StoreResult<&mut RoomData> {
        self.rooms
            .get_mut(&id)
            .ok_or(StoreError::NotFound(Entity::Room))
    }

    fn insert_membership(&mut self, data_id: RoomId, member: Member) {
        self.rooms_by_user
            .entry(member.user_id)
            .or_default()
            .insert(data_id);
        if let Some(data) = self.rooms.get_mut(&data_id) {
            data.members.insert(member.user_id, member);
        }
    }

    fn message_mut(&mut self, id: MessageId) -> StoreResult<&mut RoomData> {
        let (room_id, _) = self
            .message_rooms
            .get(&id)
            .copied()
            .ok_or(StoreError::NotFound(Entity::Message))?;
        self.rooms
            .get_mut(&room_id)
            .ok_or(StoreError::NotFound(Entity::Message))
    }

    /// Applies `change` to a live message and files it under the room's next change cursor.
    fn change_message(
        &mut self,
        id: MessageId,
        change: impl FnOnce(&mut Message),
    ) -> StoreResult<Message> {
        let seq = self
            .message_rooms
            .get(&id)
            .map(|(_, seq)| *seq)
            .ok_or(StoreError::NotFound(Entity::Message))?;
        let data = self.message_mut(id)?;
        let change_id = data.room.last_change + 1;
        let message = data
            .history
            .get_mut(&seq)
            .filter(|message| message.deleted_at.is_none())
            .ok_or(StoreError::NotFound(Entity::Message))?;
        let previous_change = message.change_id;
        change(message);
        message.change_id = change_id;
        let message = message.clone();
        data.changes.remove(&previous_change);
        data.changes.insert(change_id, seq);
        data.room.last_change = change_id;
        Ok(message)
    }
}

#[async_trait]
impl UserStore for MemoryStore {
    async fn insert_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.usernames.contains_key(&user.username) {
            return Err(StoreError::Conflict(Conflict::UsernameTaken));
        }
        if let Some(email) = &user.email {
            if inner.emails.contains_key(email) {
                return Err(StoreError::Conflict(Conflict::EmailTaken));
            }
            inner.emails.insert(email.clone(), user.id);
        }
        inner.usernames.insert(user.username.clone(), user.id);
        inner.users.insert(
            user.id,
            StoredUser {
                user: user.clone(),
                password_hash: password_hash.map(str::to_owned),
            },
        );
        Ok(())
    }

    async fn user(&self, id: UserId) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(&id).map(|stored| stored.user.clone()))
    }

    async fn user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        let inner = self.lock();
        Ok(inner
            .usernames
            .get(username)
            .and_then(|id| inner.users.get(id))
            .map(|stored| stored.user.clone()))
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        let inner = self.lock();
        Ok(inner
            .emails
            .get(email)
            .and_then(|id| inner.users.get(id))
            .map(|stored| stored.user.clone()))
    }

    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        Ok(self
            .lock()
            .users
            .get(&id)
            .and_then(|stored| stored.password_hash.clone()))
    }

    async fn set_password_hash(&self, id: UserId, hash: Option<&str>) -> StoreResult<()> {
        let mut inner = self.lock();
        let stored = inner
            .users
            .get_mut(&id)
            .ok_or(StoreError::NotFound(Entity::User))?;
        stored.password_hash = hash.map(str::to_owned);
        Ok(())
    }

    async fn update_user(&self, user: &User) -> StoreResult<()> {
        let mut inner = self.lock();
        let old = inner
            .users
            .get(&user.id)
            .map(|stored| stored.user.clone())
            .ok_or(StoreError::NotFound(Entity::User))?;
        if old.username != user.username && inner.usernames.contains_key(&user.username) {
            return Err(StoreError::Conflict(Conflict::UsernameTaken));
        }
        if old.email != user.email {
            if let Some(email) = &user.email
                && inner.emails.contains_key(email)
            {
                return Err(StoreError::Conflict(Conflict::EmailTaken));
            }
            if let Some(email) = &old.email {
                inner.emails.remove(email);
            }
            if let Some(email) = &user.email {
                inner.emails.insert(email.clone(), user.id);
            }
        }
        if old.username != user.username {
            inner.usernames.remove(&old.username);
            inner.usernames.insert(user.username.clone(), user.id);
        }
        if let Some(stored) = inner.users.get_mut(&user.id) {
            stored.user = user.clone();
        }
        Ok(())
    }

    async fn delete_user(&self, id: UserId) -> StoreResult<()> {
        let mut inner = self.lock();
        let stored = inner
            .users
            .remove(&id)
            .ok_or(StoreError::NotFound(Entity::User))?;
        inner.usernames.remove(&stored.user.username);
        if let Some(email) = &stored.user.email {
            inner.emails.remove(email);
        }
        inner.tokens.retain(|_, token| token.user_id != id);
        Ok(())
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<Vec<User>> {
        let inner = self.lock();
        let start = match &query.after_username {
            Some(after) => Bound::Excluded(after.clone()),
            None => Bound::Unbounded,
        };
        let search = query.search.as_deref().map(fold);
        Ok(inner
            .usernames
            .range((start, Bound::Unbounded))
            .filter_map(|(_, id)| inner.users.get(id))
            .map(|stored| &stored.user)
            .filter(|user| match &search {
                Some(needle) => {
                    user.username.contains(needle.as_str())
                        || contains_folded(&user.display_name, needle)
                }
                None => true,
            })
            .take(query.limit as usize)
            .cloned()
            .collect())
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn insert_session(&self, session: &NewSession) -> StoreResult<()> {
        let mut inner = self.lock();
        for (token, kind) in [
            (&session.access, TokenKind::Access),
            (&session.refresh, TokenKind::Refresh),
        ] {
            inner.tokens.insert(
                token.hash,
                TokenRecord {
                    hash: token.hash,
                    kind,
                    session_id: session.session_id,
                    user_id: session.user_id,
                    expires_at: token.expires_at,
                    rotated: false,
                },
            );
        }
        Ok(())
    }

    async fn token(&self, hash: &TokenHash) -> StoreResult<Option<TokenRecord>> {
        Ok(self.lock().tokens.get(hash).cloned())
    }

    async fn rotate_refresh_token(&self, exchange: &TokenExchange) -> StoreResult<Rotation> {
        let mut inner = self.lock();
        let Some(token) = inner.tokens.get(&exchange.presented).cloned() else {
            return Ok(Rotation::Invalid);
        };
        if token.kind != TokenKind::Refresh {
            return Ok(Rotation::Invalid);
        }
        let session_id = token.session_id;
        if token.rotated {
            inner.tokens.retain(|_, t| t.session_id != session_id);
            return Ok(Rotation::Reused {
                session_id,
                user_id: token.user_id,
            });
        }
        if token.expires_at <= exchange.at {
            return Ok(Rotation::Invalid);
        }
        inner
            .tokens
            .retain(|_, t| !(t.session_id == session_id && t.kind == TokenKind::Access));
        if let Some(t) = inner.tokens.get_mut(&exchange.presented) {
            t.rotated = true;
        }
        for (new, kind) in [
            (&exchange.access, TokenKind::Access),
            (&exchange.refresh, TokenKind::Refresh),
        ] {
            inner.tokens.insert(
                new.hash,
                TokenRecord {
                    hash: new.hash,
                    kind,
                    session_id,
                    user_id: token.user_id,
                    expires_at: new.expires_at,
                    rotated: false,
                },
            );
        }
        Ok(Rotation::Rotated {
            session_id,
            user_id: token.user_id,
        })
    }

    async fn insert_ticket(
        &self,
        ticket: &IssuedToken,
        session: SessionId,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        if !inner.session_active(session, now) {
            return Ok(false);
        }
        inner.tokens.insert(
            ticket.hash,
            TokenRecord {
                hash: ticket.hash,
                kind: TokenKind::Ticket,
                session_id: session,
                user_id: user,
                expires_at: ticket.expires_at,
                rotated: false,
            },
        );
        Ok(true)
    }

    async fn take_ticket(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TokenRecord>> {
        let mut inner = self.lock();
        if inner.tokens.get(hash).map(|t| t.kind) != Some(TokenKind::Ticket) {
            return Ok(None);
        }
        Ok(inner.tokens.remove(hash).filter(|t| t.expires_at > now))
    }

    async fn session_active(&self, session: SessionId, now: DateTime<Utc>) -> StoreResult<bool> {
        Ok(self.lock().session_active(session, now))
    }

    async fn revoke_session(&self, session: SessionId) -> StoreResult<()> {
        self.lock().tokens.retain(|_, t| t.session_id != session);
        Ok(())
    }

    async fn revoke_user_sessions(&self, user: UserId) -> StoreResult<()> {
        self.lock().tokens.retain(|_, t| t.user_id != user);
        Ok(())
    }

    async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut inner = self.lock();
        let before = inner.tokens.len();
        inner.tokens.retain(|_, t| t.expires_at >= now);
        Ok((before - inner.tokens.len()) as u64)
    }
}

#[async_trait]
impl RoomStore for MemoryStore {
    async fn create_room(&self, room: &Room, owner: &Member) -> StoreResult<()> {
        let mut inner = self.lock();
        if let Some(alias) = &room.alias {
            if inner.aliases.contains_key(alias) {
                return Err(StoreError::Conflict(Conflict::AliasTaken));
            }
            inner.aliases.insert(alias.clone(), room.id);
        }
        let mut room = room.clone();
        room.member_count = 1;
        room.last_seq = 0;
        room.last_change = 0;
        inner.rooms.insert(room.id, RoomData::new(room));
        let mut owner = owner.clone();
        owner.last_read_seq = 0;
        inner.insert_membership(owner.room_id, owner);
        Ok(())
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        Ok(self.lock().rooms.get(&id).map(|data| data.room.clone()))
    }

    async fn room_by_alias(&self, alias: &str) -> StoreResult<Option<Room>> {
        let inner = self.lock();
        Ok(inner
            .aliases
            .get(alias)
            .and_then(|id| inner.rooms.get(id))
            .map(|data| data.room.clone()))
    }

    async fn update_room(&self, room: &Room) -> StoreResult<()> {
        let mut inner = self.lock();
        let old_alias = inner
            .rooms
            .get(&room.id)
            .map(|data| data.room.alias.clone())
            .ok_or(StoreError::NotFound(Entity::Room))?;
        if old_alias != room.alias {
            if let Some(alias) = &room.alias {
                if inner.aliases.contains_key(alias) {
                    return Err(StoreError::Conflict(Conflict::AliasTaken));
                }
                inner.aliases.insert(alias.clone(), room.id);
            }
            if let Some(alias) = &old_alias {
                inner.aliases.remove(alias);
            }
        }
        let stored = &mut inner.room_mut(room.id)?.room;
        stored.name = room.name.clone();
        stored.topic = room.topic.clone();
        stored.alias = room.alias.clone();
        stored.visibility = room.visibility;
        stored.capacity = room.capacity;
        stored.password_hash = room.password_hash.clone();
        stored.updated_at = room.updated_at;
        Ok(())
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        self.lock().delete_room(id)
    }

    async fn list_public_rooms(&self, query: &RoomQuery) -> StoreResult<Vec<Room>> {
        let inner = self.lock();
        let start = match query.after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        Ok(inner
            .rooms
            .range((start, Bound::Unbounded))
            .map(|(_, data)| &data.room)
            .filter(|room| {
                room.kind == crate::room::RoomKind::Group && room.visibility == Visibility::Public
            })
            .filter(|room| query.matches(room))
            .take(query.limit as usize)
            .cloned()
            .collect())
    }

    async fn list_rooms(&self, after: Option<RoomId>, limit: u32) -> StoreResult<Vec<Room>> {
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let inner = self.lock();
        let rooms = inner.rooms.range((start, Bound::Unbounded));
        Ok(rooms
            .map(|(_, data)| data.room.clone())
            .take(limit as usize)
            .collect())
    }

    async fn repair_counters(&self, seen: SeenCounters, fixed: RoomCounters) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(data) = inner.room_as_seen(seen)? else {
            return Ok(false);
        };
        data.room.last_seq = fixed.last_seq;
        data.room.last_change = fixed.last_change;
        data.room.member_count = fixed.member_count;
        for member in data.members.values_mut() {
            member.last_read_seq = member.last_read_seq.min(fixed.last_seq);
        }
        Ok(true)
    }

    async fn rooms_of_user(
        &self,
        user: UserId,
        query: &RoomQuery,
    ) -> StoreResult<Vec<(Room, Member)>> {
        let inner = self.lock();
        let Some(rooms) = inner.rooms_by_user.get(&user) else {
            return Ok(Vec::new());
        };
        let start = match query.after {
            Some(after) => Bound::Excluded(after),
            None => Bound::Unbounded,
        };
        Ok(rooms
            .range((start, Bound::Unbounded))
            .filter_map(|id| inner.rooms.get(id))
            .filter(|data| query.matches(&data.room))
            .filter_map(|data| {
                let member = data.members.get(&user)?;
                Some((data.room.clone(), member.clone()))
            })
            .take(query.limit as usize)
            .collect())
    }

    async fn find_or_create_direct(
        &self,
        room: &Room,
        members: [&Member; 2],
    ) -> StoreResult<(Room, bool)> {
        let mut inner = self.lock();
        let key = direct_key(members[0].user_id, members[1].user_id);
        if let Some(existing) = inner.directs.get(&key).and_then(|id| inner.rooms.get(id)) {
            return Ok((existing.room.clone(), false));
        }
        let mut room = room.clone();
        room.member_count = 2;
        room.last_seq = 0;
        room.last_change = 0;
        inner.directs.insert(key, room.id);
        inner.rooms.insert(room.id, RoomData::new(room.clone()));
        for member in members {
            let mut member = member.clone();
            member.last_read_seq = 0;
            inner.insert_membership(room.id, member);
        }
        Ok((room, true))
    }

    async fn direct_room(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>> {
        let inner = self.lock();
        Ok(inner
            .directs
            .get(&direct_key(a, b))
            .and_then(|id| inner.rooms.get(id))
            .map(|data| data.room.clone()))
    }
}

#[async_trait]
impl MemberStore for MemoryStore {
    async fn add_member(&self, member: &Member) -> StoreResult<Member> {
        let mut inner = self.lock();
        let data = inner.room_mut(member.room_id)?;
        if data.members.contains_key(&member.user_id) {
            return Err(StoreError::Conflict(Conflict::AlreadyMember));
        }
        if data
            .room
            .capacity
            .is_some_and(|capacity| data.room.member_count >= capacity)
        {
            return Err(StoreError::Conflict(Conflict::RoomFull));
        }
        data.room.member_count += 1;
        let mut member = member.clone();
        member.last_read_seq = data.room.last_seq;
        inner.insert_membership(member.room_id, member.clone());
        Ok(member)
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<Departure> {
        let mut inner = self.lock();
        let data = inner
            .rooms
            .get_mut(&room)
            .ok_or(StoreError::NotFound(Entity::Member))?;
        data.members
            .remove(&user)
            .ok_or(StoreError::NotFound(Entity::Member))?;
        data.mentions.retain(|(mentioned, _)| *mentioned != user);
        data.thread_markers.retain(|(_, member), _| *member != user);
        data.room.member_count -= 1;
        let (was_owner, empty) = (data.room.owner == Some(user), data.members.is_empty());
        if let Some(rooms) = inner.rooms_by_user.get_mut(&user) {
            rooms.remove(&room);
        }
        if empty {
            inner.delete_room(room)?;
            return Ok(Departure::RoomDeleted);
        }
        if !was_owner {
            return Ok(Departure::Left { new_owner: None });
        }
        let data = inner.room_mut(room)?;
        let members: Vec<Member> = data.members.values().cloned().collect();
        let next = successor(&members, user)
            .and_then(|next| data.members.get_mut(&next.user_id))
            .ok_or(StoreError::NotFound(Entity::Member))?;
        next.role = Role::Owner;
        data.room.owner = Some(next.user_id);
        Ok(Departure::Left {
            new_owner: Some(next.clone()),
        })
    }

    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        Ok(self
            .lock()
            .rooms
            .get(&room)
            .and_then(|data| data.members.get(&user))
            .cloned())
    }

    async fn room_with_member(
        &self,
        room: RoomId,
        user: UserId,
    ) -> StoreResult<Option<(Room, Option<Member>)>> {
        Ok(self
            .lock()
            .rooms
            .get(&room)
            .map(|data| (data.room.clone(), data.members.get(&user).cloned())))
    }

    async fn members(&self, room: RoomId, query: &MemberQuery) -> StoreResult<Vec<Member>> {
        let inner = self.lock();
        let members = inner
            .rooms
            .get(&room)
            .map(|data| data.members.values().cloned().collect())
            .unwrap_or_default();
        Ok(query.page(members))
    }

    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> StoreResult<Member> {
        let mut inner = self.lock();
        let member = inner
            .rooms
            .get_mut(&room)
            .and_then(|data| data.members.get_mut(&user))
            .ok_or(StoreError::NotFound(Entity::Member))?;
        member.role = role;
        Ok(member.clone())
    }

    async fn transfer_ownership(&self, room: RoomId, to: UserId) -> StoreResult<()> {
        let mut inner = self.lock();
        let data = inner.room_mut(room)?;
        if !data.members.contains_key(&to) {
            return Err(StoreError::NotFound(Entity::Member));
        }
        if let Some(old) = data.room.owner.and_then(|old| data.members.get_mut(&old)) {
            old.role = Role::Admin;
        }
        if let Some(new) = data.members.get_mut(&to) {
            new.role = Role::Owner;
        }
        data.room.owner = Some(to);
        Ok(())
    }
}

#[async_trait]
impl MessageStore for MemoryStore {
    async fn append_message(&self, new: &NewStoredMessage) -> StoreResult<Sent> {
        let mut inner = self.lock();
        inner.may_append(new)?;
        if let Some(txn_id) = &new.txn_id {
            let original = inner
                .txn_ids
                .get(&(new.sender, txn_id.clone()))
                .and_then(|id| inner.message_rooms.get(id))
                .and_then(|(room, seq)| inner.rooms.get(room)?.history.get(seq));
            if let Some(original) = original {
                return Ok(Sent {
                    message: original.clone(),
                    created: false,
                });
            }
        }
        let root = match new.thread_root {
            Some(root) => Some(inner.thread_root(new.room_id, root)?),
            None => None,
        };
        let data = inner.room_mut(new.room_id)?;
        let seq = data.room.last_seq + 1;
        let change_id = data.room.last_change + 1;
        let mut message = new.stored_at(seq, change_id);
        message
            .mentions
            .retain(|user| data.members.contains_key(user));
        let mentioned: Vec<UserId> = if new.mentions_room {
            data.members.keys().copied().collect()
        } else {
            message.mentions.clone()
        };
        for user in mentioned {
            if user != new.sender {
                data.mentions.insert((user, seq));
            }
        }
        data.room.last_seq = seq;
        data.room.last_change = change_id;
        data.history.insert(seq, message.clone());
        data.changes.insert(change_id, seq);
        if let Some(root) = root {
            data.count_reply(root, &message);
        }
        if let Some(member) = data.members.get_mut(&new.sender) {
            member.last_read_seq = member.last_read_seq.max(seq);
        }
        inner.message_rooms.insert(new.id, (new.room_id, seq));
        if let Some(txn_id) = &new.txn_id {
            inner.txn_ids.insert((new.sender, txn_id.clone()), new.id);
        }
        Ok(Sent {
            message,
            created: true,
        })
    }

    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>> {
        let inner = self.lock();
        Ok(inner
            .message_rooms
            .get(&id)
            .and_then(|(room, seq)| inner.rooms.get(room)?.history.get(seq))
            .cloned())
    }

    async fn edit_message(
        &self,
        id: MessageId,
        body: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Message> {
        self.lock().change_message(id, |message| {
            message.body = body.to_owned();
            message.edited_at = Some(at);
        })
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> StoreResult<Message> {
        let mut inner = self.lock();
        let message = inner.change_message(id, |message| {
            message.body.clear();
            message.metadata = None;
            message.deleted_at = Some(at);
        })?;
        let data = inner.message_mut(id)?;
        data.reactions.retain(|(seq, _), _| *seq != message.seq);
        data.mentions.retain(|(_, seq)| *seq != message.seq);
        Ok(message)
    }

    async fn messages(&self, room: RoomId, range: SeqRange) -> StoreResult<Vec<Message>> {
        let inner = self.lock();
        let Some(data) = inner.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        let lower = range.after.map_or(Bound::Unbounded, Bound::Excluded);
        let upper = range.before.map_or(Bound::Unbounded, Bound::Excluded);
        if matches!((range.after, range.before), (Some(a), Some(b)) if a >= b) {
            return Ok(Vec::new());
        }
        Ok(page(
            data.history.range((lower, upper)).map(|(_, m)| m),
            range,
        ))
    }

    async fn changes(&self, room: RoomId, after: u64, limit: u32) -> StoreResult<Vec<Message>> {
        let inner = self.lock();
        let Some(data) = inner.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        Ok(data
            .changes
            .range((Bound::Excluded(after), Bound::Unbounded))
            .filter_map(|(_, seq)| data.history.get(seq))
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<Message>> {
        let inner = self.lock();
        let rooms = inner.rooms_by_user.get(&query.user).into_iter().flatten();
        let mut found: Vec<Message> = rooms
            .filter(|room| query.room.is_none_or(|only| only == **room))
            .filter_map(|room| inner.rooms.get(room))
            .flat_map(|data| data.history.values())
            .filter(|message| !message.is_deleted())
            .filter(|message| query.before.is_none_or(|before| message.id < before))
            .filter(|message| search::matches(&search::terms(&message.body), &query.terms))
            .cloned()
            .collect();
        found.sort_by_key(|message| std::cmp::Reverse(message.id));
        found.truncate(query.limit as usize);
        Ok(found)
    }

    async fn mentions_between(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<Mention>> {
        let inner = self.lock();
        let Some(data) = inner.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        let mut mentions: Vec<Mention> = (data.mentions.iter())
            .filter(|(_, seq)| seqs.contains(seq))
            .filter_map(|(user, seq)| {
                let message = data.history.get(seq)?.id;
                Some(Mention {
                    user: *user,
                    seq: *seq,
                    message,
                })
            })
            .collect();
        mentions.sort_by_key(|mention| (mention.seq, mention.user));
        Ok(mentions)
    }

    async fn replace_unread_mentions(
        &self,
        seen: SeenCounters,
        mentions: &[Mention],
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        let Some(data) = inner.room_as_seen(seen)? else {
            return Ok(false);
        };
        let members = &data.members;
        let read = |user, seq| members.get(&user).is_some_and(|m| seq <= m.last_read_seq);
        data.mentions.retain(|(user, seq)| read(*user, *seq));
        data.mentions
            .extend(mentions.iter().map(|m| (m.user, m.seq)));
        Ok(true)
    }

    async fn mentions(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let inner = self.lock();
        let rooms = inner.rooms_by_user.get(&user).into_iter().flatten();
        let mut found: Vec<Message> = rooms
            .filter_map(|room| inner.rooms.get(room))
            .flat_map(|data| {
                data.mentions
                    .range((user, 0)..=(user, u64::MAX))
                    .filter_map(|(_, seq)| data.history.get(seq))
            })
            .filter(|message| before.is_none_or(|before| message.id < before))
            .cloned()
            .collect();
        found.sort_by_key(|message| std::cmp::Reverse(message.id));
        found.truncate(limit as usize);
        Ok(found)
    }
}

#[async_trait]
impl ThreadStore for MemoryStore {
    async fn replies(
        &self,
        room: RoomId,
        root: MessageId,
        range: SeqRange,
    ) -> StoreResult<Vec<Message>> {
        let inner = self.lock();
        let (Some(data), Some((in_room, root))) =
            (inner.rooms.get(&room), inner.message_rooms.get(&root))
        else {
            return Ok(Vec::new());
        };
        if *in_room != room {
            return Ok(Vec::new());
        }
        let replies = data.replies(*root).iter();
        Ok(page(replies.filter_map(|seq| data.history.get(seq)), range))
    }

    async fn threads(
        &self,
        room: RoomId,
        viewer: UserId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<Thread>> {
        let inner = self.lock();
        let Some(data) = inner.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        Ok(data
            .thread_activity
            .range(..before.unwrap_or(u64::MAX))
            .rev()
            .take(limit as usize)
            .filter_map(|(_, root)| {
                let marker = data.thread_markers.get(&(*root, viewer));
                Some(Thread {
                    root: data.history.get(root)?.clone(),
                    unread: data.unread_replies(*root, marker),
                })
            })
            .collect())
    }

    async fn mark_thread_read(
        &self,
        room: RoomId,
        root: MessageId,
        user: UserId,
        seq: u64,
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        let is_member = inner
            .rooms
            .get(&room)
            .is_some_and(|data| data.members.contains_key(&user));
        if !is_member {
            return Err(StoreError::NotFound(Entity::Member));
        }
        let root = inner
            .message_rooms
            .get(&root)
            .filter(|(in_room, _)| *in_room == room)
            .map(|(_, seq)| *seq)
            .ok_or(StoreError::NotFound(Entity::Thread))?;
        let data = inner.room_mut(room)?;
        if data
            .history
            .get(&root)
            .is_none_or(|root| root.thread_root.is_some())
        {
            return Err(StoreError::NotFound(Entity::Thread));
        }
        let read = data.replies(root).partition_point(|reply| *reply <= seq) as u64;
        let marker = data.thread_markers.entry((root, user)).or_default();
        marker.read = marker.read.max(read);
        let marker = *marker;
        Ok(data.unread_replies(root, Some(&marker)))
    }

    async fn repair_thread(
        &self,
        seen: SeenCounters,
        root: MessageId,
        summary: Option<&ThreadSummary>,
    ) -> StoreResult<bool> {
        let room = seen.room;
        let mut inner = self.lock();
        let at = inner.message_rooms.get(&root).copied();
        let Some(data) = inner.room_as_seen(seen)? else {
            return Ok(false);
        };
        let seq = at
            .filter(|(in_room, _)| *in_room == room)
            .map(|(_, seq)| seq)
            .ok_or(StoreError::NotFound(Entity::Message))?;
        let message = (data.history.get_mut(&seq)).ok_or(StoreError::NotFound(Entity::Message))?;
        if let Some(old) = message.thread.take() {
            data.thread_activity.remove(&old.last_reply_seq);
        }
        message.thread = summary.cloned();
        if let Some(summary) = summary {
            data.thread_activity.insert(summary.last_reply_seq, seq);
        }
        Ok(true)
    }

    async fn thread_markers(&self, room: RoomId) -> StoreResult<Vec<super::ThreadMarker>> {
        let inner = self.lock();
        let Some(data) = inner.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        let mut markers: Vec<super::ThreadMarker> = data
            .thread_markers
            .iter()
            .map(|((root_seq, user), marker)| super::ThreadMarker {
                root_seq: *root_seq,
                user: *user,
                read: marker.read,
                following: marker.following,
            })
            .collect();
        markers.sort_by_key(|marker| (marker.root_seq, marker.user));
        Ok(markers)
    }
}

impl Inner {
    /// The checks of a reaction change, in the order of the contract: the message's room and
    /// sequence number.
    fn may_react(&self, id: MessageId, user: UserId) -> StoreResult<(RoomId, u64)> {
        let (room, seq) = self
            .message_rooms
            .get(&id)
            .copied()
            .ok_or(StoreError::NotFound(Entity::Message))?;
        let data = self
            .rooms
            .get(&room)
            .ok_or(StoreError::NotFound(Entity::Message))?;
        if data.history.get(&seq).is_none_or(Message::is_deleted) {
            return Err(StoreError::NotFound(Entity::Message));
        }
        if !data.members.contains_key(&user) {
            return Err(StoreError::NotFound(Entity::Member));
        }
        Ok((room, seq))
    }
}

#[async_trait]
impl ReactionStore for MemoryStore {
    async fn add_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
        max_keys: u32,
    ) -> StoreResult<Option<Message>> {
        let mut inner = self.lock();
        let (room, seq) = inner.may_react(id, user)?;
        let data = inner
            .rooms
            .get_mut(&room)
            .ok_or(StoreError::NotFound(Entity::Message))?;
        let entry = (seq, key.to_owned());
        if !data.reactions.contains_key(&entry) {
            let keys = data
                .reactions
                .range((seq, String::new())..)
                .take_while(|((s, _), _)| *s == seq)
                .count();
            if keys >= max_keys as usize {
                return Err(StoreError::Conflict(Conflict::TooManyReactions));
            }
        }
        if !data.reactions.entry(entry).or_default().insert(user) {
            return Ok(None);
        }
        inner.change_message(id, |_| {}).map(Some)
    }

    async fn remove_reaction(
        &self,
        id: MessageId,
        user: UserId,
        key: &str,
    ) -> StoreResult<Option<Message>> {
        let mut inner = self.lock();
        let (room, seq) = inner.may_react(id, user)?;
        let data = inner
            .rooms
            .get_mut(&room)
            .ok_or(StoreError::NotFound(Entity::Message))?;
        let entry = (seq, key.to_owned());
        let Some(users) = data.reactions.get_mut(&entry) else {
            return Ok(None);
        };
        if !users.remove(&user) {
            return Ok(None);
        }
        if users.is_empty() {
            data.reactions.remove(&entry);
        }
        inner.change_message(id, |_| {}).map(Some)
    }

    async fn reactions(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
        viewer: UserId,
    ) -> StoreResult<Vec<(u64, Reaction)>> {
        let inner = self.lock();
        let Some(data) = inner.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        Ok(data
            .reactions
            .range((*seqs.start(), String::new())..)
            .take_while(|((seq, _), _)| seq <= seqs.end())
            .map(|((seq, key), users)| {
                let reaction = Reaction {
                    key: key.clone(),
                    count: u32::try_from(users.len()).unwrap_or(u32::MAX),
                    me: users.contains(&viewer),
                };
                (*seq, reaction)
            })
            .collect())
    }

    async fn reactors(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<(u64, String, UserId)>> {
        let inner = self.lock();
        let Some(data) = inner.rooms.get(&room) else {
            return Ok(Vec::new());
        };
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let reactions = data.reactions.range((*seqs.start(), String::new())..);
        Ok(reactions
            .take_while(|((seq, _), _)| seq <= seqs.end())
            .flat_map(|((seq, key), users)| users.iter().map(|user| (*seq, key.clone(), *user)))
            .collect())
    }
}

#[async_trait]
impl ReadMarkerStore for MemoryStore {
    async fn advance_read_marker(&self, room: RoomId, user: UserId, seq: u64) -> StoreResult<u64> {
        let mut inner = self.lock();
        let member = inner
            .rooms
            .get_mut(&room)
            .and_then(|data| data.members.get_mut(&user))
            .ok_or(StoreError::NotFound(Entity::Member))?;
        member.last_read_seq = member.last_read_seq.max(seq);
        Ok(member.last_read_seq)
    }

    async fn unread_counts(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> StoreResult<Vec<UnreadCounts>> {
        let inner = self.lock();
        let rooms = inner.rooms_by_user.get(&user).into_iter().flatten();
        Ok(rooms
            .filter(|id| room.is_none_or(|room| room == **id))
            .filter_map(|id| inner.rooms.get(id))
            .filter_map(|data| {
                let read = data.members.get(&user)?.last_read_seq;
                let mentions = data
                    .mentions
                    .range((user, read + 1)..=(user, u64::MAX))
                    .count() as u64;
                let threads = data
                    .thread_markers
                    .iter()
                    .filter(|((_, member), marker)| *member == user && marker.following)
                    .map(|((root, _), marker)| data.unread_replies(*root, Some(marker)))
                    .sum();
                let counts = UnreadCounts {
                    room_id: data.room.id,
                    mentions,
                    threads,
                };
                (mentions > 0 || threads > 0).then_some(counts)
            })
            .collect())
    }
}

#[async_trait]
impl ImportStore for MemoryStore {
    async fn import_mark(&self) -> StoreResult<Option<String>> {
        Ok(self.lock().import_mark.clone())
    }

    async fn set_import_mark(&self, mark: Option<&str>) -> StoreResult<()> {
        self.lock().import_mark = mark.map(str::to_owned);
        Ok(())
    }

    async fn import_room(&self, room: &Room) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.rooms.contains_key(&room.id) {
            return Ok(());
        }
        if let Some(alias) = &room.alias {
            if inner.aliases.contains_key(alias) {
                return Err(StoreError::Conflict(Conflict::AliasTaken));
            }
            inner.aliases.insert(alias.clone(), room.id);
        }
        let mut room = room.clone();
        room.member_count = 0;
        room.last_seq = 0;
        room.last_change = 0;
        inner.rooms.insert(room.id, RoomData::new(room));
        Ok(())
    }

    async fn import_members(&self, room: RoomId, members: &[Member]) -> StoreResult<()> {
        let mut inner = self.lock();
        let data = inner.room_mut(room)?;
        let new: Vec<Member> = members
            .iter()
            .filter(|member| !data.members.contains_key(&member.user_id))
            .cloned()
            .collect();
        for member in new {
            inner.insert_membership(room, member);
        }
        Ok(())
    }

    async fn import_messages(
        &self,
        room: RoomId,
        messages: &[Message],
        mentions: &[Mention],
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        inner.room_mut(room)?;
        for message in messages {
            let root = message
                .thread_root
                .and_then(|root| inner.message_rooms.get(&root));
            let root = root.map(|(_, seq)| *seq);
            inner.message_rooms.insert(message.id, (room, message.seq));
            if let Some(txn_id) = &message.txn_id {
                let key = (message.sender, txn_id.clone());
                inner.txn_ids.insert(key, message.id);
            }
            let data = inner.room_mut(room)?;
            let seq = message.seq;
            let mut message = message.clone();
            message.thread = None;
            message.reactions.clear();
            data.room.last_seq = seq;
            data.room.last_change = data.room.last_change.max(message.change_id);
            data.changes.insert(message.change_id, seq);
            data.history.insert(seq, message.clone());
            if let Some(root) = root {
                data.count_in_thread(root, &message);
            }
        }
        let data = inner.room_mut(room)?;
        (data.mentions).extend(mentions.iter().map(|mention| (mention.user, mention.seq)));
        Ok(())
    }

    async fn import_reactions(
        &self,
        room: RoomId,
        reactions: &[(u64, String, UserId)],
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let data = inner.room_mut(room)?;
        for (seq, key, user) in reactions {
            data.reactions
                .entry((*seq, key.clone()))
                .or_default()
                .insert(*user);
        }
        Ok(())
    }

    async fn import_thread_markers(
        &self,
        room: RoomId,
        markers: &[super::ThreadMarker],
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        let data = inner.room_mut(room)?;
        for marker in markers {
            data.thread_markers.insert(
                (marker.root_seq, marker.user),
                ThreadMarker {
                    read: marker.read,
                    following: marker.following,
                },
            );
        }
        Ok(())
    }

    async fn finish_room_import(&self, room: &Room) -> StoreResult<()> {
        let mut inner = self.lock();
        let data = inner.room_mut(room.id)?;
        data.room.member_count = room.member_count;
        data.room.last_seq = room.last_seq;
        data.room.last_change = room.last_change;
        let pair: Vec<UserId> = data.members.keys().copied().collect();
        if let ([a, b], true) = (pair.as_slice(), data.room.is_direct()) {
            let key = direct_key(*a, *b);
            inner.directs.insert(key, room.id);
        }
        Ok(())
    }
}

#[async_trait]
impl AttemptStore for MemoryStore {
    async fn count_attempt(&self, attempt: Attempt) -> StoreResult<Option<DateTime<Utc>>> {
        let mut inner = self.lock();
        let entry = inner
            .attempts
            .entry(attempt.key)
            .or_insert((0, attempt.window_end));
        if entry.1 <= attempt.at {
            *entry = (0, attempt.window_end);
        }
        if entry.0 >= attempt.allowed {
            return Ok(Some(entry.1));
        }
        entry.0 += 1;
        Ok(None)
    }

    async fn clear_attempts(&self, key: &str) -> StoreResult<()> {
        self.lock().attempts.remove(key);
        Ok(())
    }

    async fn purge_attempts(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut inner = self.lock();
        let before = inner.attempts.len();
        inner.attempts.retain(|_, (_, end)| *end >= now);
        Ok((before - inner.attempts.len()) as u64)
    }
}

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn open_connection(&self, connection: &Connection) -> StoreResult<()> {
        self.lock()
            .connections
            .insert(connection.id, connection.clone());
        Ok(())
    }

    async fn close_connection(&self, id: ConnectionId) -> StoreResult<()> {
        self.lock().connections.remove(&id);
        Ok(())
    }

    async fn renew_connections(&self, node: NodeId, expires_at: DateTime<Utc>) -> StoreResult<()> {
        for connection in self.lock().connections.values_mut() {
            if connection.node == node {
                connection.expires_at = expires_at;
            }
        }
        Ok(())
    }

    async fn online_users(&self, users: &[UserId], now: DateTime<Utc>) -> StoreResult<Vec<UserId>> {
        let wanted: BTreeSet<UserId> = users.iter().copied().collect();
        let inner = self.lock();
        let online: BTreeSet<UserId> = inner
            .connections
            .values()
            .filter(|c| c.expires_at > now && wanted.contains(&c.user_id))
            .map(|c| c.user_id)
            .collect();
        Ok(online.into_iter().collect())
    }

    async fn purge_connections(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut inner = self.lock();
        let before = inner.connections.len();
        inner.connections.retain(|_, c| c.expires_at >= now);
        Ok((before - inner.connections.len()) as u64)
    }
}
