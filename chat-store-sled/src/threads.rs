//! Threads and mentions, kept as each message is appended (inside its transaction), in the
//! trees listed in the crate docs.

use std::ops::{Bound, RangeInclusive};

use async_trait::async_trait;
use chat_core::store::{Mention, RoomCounters, SeenCounters, SeqRange, ThreadMarker, ThreadStore};
use chat_core::{
    Entity, Member, Message, MessageId, RoomId, StoreError, Thread, ThreadSummary, UnreadCounts,
    UserId,
};
use sled::IVec;

use crate::SledStore;
use crate::codec::{StoreResult, backend, counter, counter_key, read, tx_read, tx_write, uuid};
use crate::messages::location;
use crate::reactions::messages_between;
use crate::rooms::{member_key, tx_member, tx_room};
use crate::tx::{Kind, Trees, Tx};

/// `parts` one after the other.
fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A thread marker's value: replies read, and whether the member follows the thread.
fn marker(value: Option<IVec>) -> StoreResult<(u64, bool)> {
    match value {
        None => Ok((0, false)),
        Some(bytes) => {
            let read = bytes.get(..8).and_then(|b| b.try_into().ok());
            let read = read.ok_or_else(|| backend("unreadable thread marker"))?;
            Ok((u64::from_be_bytes(read), bytes.get(8) == Some(&1)))
        }
    }
}

fn marker_value(read: u64, following: bool) -> Vec<u8> {
    key(&[&read.to_be_bytes(), &[u8::from(following)]])
}

/// The root message of a thread `root` may start in `room`, and where it is: a live message of
/// the room that is no reply in a thread.
pub(crate) fn tx_thread_root(
    tx: &Tx<'_>,
    room: RoomId,
    root: MessageId,
) -> StoreResult<(Message, [u8; 24])> {
    let not_found = || StoreError::NotFound(Entity::Thread);
    let at = tx
        .get(Kind::MessageIds, root.0.as_bytes())?
        .ok_or_else(not_found)?;
    let at: [u8; 24] = at.as_ref().try_into().map_err(backend)?;
    if !at.starts_with(room.0.as_bytes()) {
        return Err(not_found());
    }
    let message: Message = tx_read(tx, Kind::Messages, at)?.ok_or_else(not_found)?;
    if message.is_deleted() || message.thread_root.is_some() {
        return Err(not_found());
    }
    Ok((message, at))
}

/// Records that `message` mentions each of `users` (members, never its sender).
pub(crate) fn tx_mention(tx: &Tx<'_>, message: &Message, users: &[UserId]) -> StoreResult<()> {
    for user in users.iter().filter(|user| **user != message.sender) {
        let mention = Mention {
            user: *user,
            seq: message.seq,
            message: message.id,
        };
        tx_put_mention(tx, message.room_id, &mention)?;
    }
    Ok(())
}

/// Writes one mention, under its three keys.
pub(crate) fn tx_put_mention(tx: &Tx<'_>, room: RoomId, mention: &Mention) -> StoreResult<()> {
    let (room, seq) = (room.0.as_bytes(), mention.seq.to_be_bytes());
    let (user, id) = (mention.user.0.as_bytes(), mention.message.0.as_bytes());
    tx.insert(Kind::Mentions, key(&[user, room, &seq]), &id[..])?;
    tx.insert(Kind::MentionsById, key(&[user, id]), key(&[room, &seq]))?;
    tx.insert(Kind::MentionsByMessage, key(&[room, &seq, user]), &id[..])
}

/// Sets a member's marker in the thread of the root numbered `root_seq`, under both its keys.
pub(crate) fn tx_put_thread_marker(
    tx: &Tx<'_>,
    room: RoomId,
    root_seq: u64,
    user: UserId,
    (read, following): (u64, bool),
) -> StoreResult<()> {
    let (room, root_seq) = (room.0.as_bytes(), root_seq.to_be_bytes());
    let at = key(&[room, &root_seq, user.0.as_bytes()]);
    tx.insert(Kind::ThreadMarkers, at, marker_value(read, following))?;
    let by_user = key(&[user.0.as_bytes(), room, &root_seq]);
    tx.insert(Kind::ThreadMarkersByUser, by_user, &[])
}

/// Counts `reply` in the thread of `root` (stored at `root_at`): the root's summary, the
/// thread's place among the room's threads, the reply's place in it, and its followers.
pub(crate) fn tx_count_reply(
    tx: &Tx<'_>,
    root: Message,
    root_at: [u8; 24],
    reply: &Message,
) -> StoreResult<()> {
    let (root, count) = tx_place_reply(tx, root, root_at, reply)?;
    let mut followers = vec![reply.sender, root.sender];
    followers.extend(&root.mentions);
    followers.extend(&reply.mentions);
    followers.sort();
    followers.dedup();
    for user in followers {
        if tx_member(tx, reply.room_id, user)?.is_none() {
            continue;
        }
        let root_seq = root.seq.to_be_bytes();
        let at = key(&[reply.room_id.0.as_bytes(), &root_seq, user.0.as_bytes()]);
        let (mut read, _) = marker(tx.get(Kind::ThreadMarkers, &at)?)?;
        if user == reply.sender {
            read = read.max(count);
        }
        tx_put_thread_marker(tx, reply.room_id, root.seq, user, (read, true))?;
    }
    Ok(())
}

/// Counts `reply` in the thread of `root` (stored at `root_at`): the root's summary, the
/// thread's place among the room's threads and the reply's place in it. Returns the root as
/// written and the thread's replies.
pub(crate) fn tx_place_reply(
    tx: &Tx<'_>,
    mut root: Message,
    root_at: [u8; 24],
    reply: &Message,
) -> StoreResult<(Message, u64)> {
    let room = reply.room_id.0.as_bytes();
    let root_seq = root.seq.to_be_bytes();
    if let Some(previous) = &root.thread {
        tx.remove(
            Kind::ThreadActivity,
            counter_key(reply.room_id.0, previous.last_reply_seq),
        )?;
    }
    let summary = ThreadSummary::counting(root.thread.take(), reply);
    let count = summary.reply_count;
    tx.insert(
        Kind::ThreadActivity,
        counter_key(reply.room_id.0, reply.seq),
        &root_seq,
    )?;
    tx.insert(
        Kind::ThreadReplies,
        key(&[room, &root_seq, &reply.seq.to_be_bytes()]),
        &count.to_be_bytes(),
    )?;
    root.thread = Some(summary);
    tx_write(tx, Kind::Messages, root_at, &root)?;
    Ok((root, count))
}

/// Keys to remove with a room (`prefix` = room) or a message (`prefix` = room ‖ seq, and
/// `threads` false: a deleted root keeps its thread): its mentions and, for a room, its
/// threads, each with the index keys that point at it.
pub(crate) fn mention_and_thread_keys(
    trees: &Trees,
    prefix: &[u8],
    threads: bool,
) -> StoreResult<Vec<(Kind, IVec)>> {
    let mut keys = Vec::new();
    for entry in trees.tree(Kind::MentionsByMessage).scan_prefix(prefix) {
        let (at, id) = entry.map_err(backend)?;
        let (room_seq, user) = at.split_at(24);
        keys.push((Kind::Mentions, key(&[user, room_seq]).into()));
        keys.push((Kind::MentionsById, key(&[user, &id]).into()));
        keys.push((Kind::MentionsByMessage, at));
    }
    if threads {
        for kind in [Kind::ThreadReplies, Kind::ThreadActivity] {
            for at in trees.tree(kind).scan_prefix(prefix).keys() {
                keys.push((kind, at.map_err(backend)?));
            }
        }
        for at in trees.tree(Kind::ThreadMarkers).scan_prefix(prefix).keys() {
            let at = at.map_err(backend)?;
            let (room_root, user) = at.split_at(24);
            keys.push((Kind::ThreadMarkersByUser, key(&[user, room_root]).into()));
            keys.push((Kind::ThreadMarkers, at));
        }
    }
    Ok(keys)
}

/// The keys of the room's unread mentions: after their member's read marker, or of users who
/// are not members.
pub(crate) fn unread_mention_keys(trees: &Trees, room: RoomId) -> StoreResult<Vec<(Kind, IVec)>> {
    let markers: std::collections::HashMap<UserId, u64> = crate::rooms::members_of(trees, room)?
        .into_iter()
        .map(|member| (member.user_id, member.last_read_seq))
        .collect();
    let mut keys = Vec::new();
    for entry in trees
        .tree(Kind::MentionsByMessage)
        .scan_prefix(room.0.as_bytes())
    {
        let (at, id) = entry.map_err(backend)?;
        let (room_seq, user) = at.split_at(24);
        let seq = counter(&room_seq[16..])?;
        let user = UserId(uuid::Uuid::from_slice(user).map_err(backend)?);
        if markers.get(&user).is_none_or(|marker| seq > *marker) {
            keys.push((Kind::Mentions, key(&[user.0.as_bytes(), room_seq]).into()));
            keys.push((Kind::MentionsById, key(&[user.0.as_bytes(), &id]).into()));
            keys.push((Kind::MentionsByMessage, at));
        }
    }
    Ok(keys)
}

/// Keys to remove when `user` leaves `room`: its mentions and thread markers there.
pub(crate) fn member_keys(
    trees: &Trees,
    room: RoomId,
    user: UserId,
) -> StoreResult<Vec<(Kind, IVec)>> {
    let prefix = key(&[user.0.as_bytes(), room.0.as_bytes()]);
    let mut keys = Vec::new();
    for entry in trees.tree(Kind::Mentions).scan_prefix(&prefix) {
        let (at, id) = entry.map_err(backend)?;
        let room_seq = &at[16..];
        keys.push((Kind::MentionsById, key(&[user.0.as_bytes(), &id]).into()));
        keys.push((
            Kind::MentionsByMessage,
            key(&[room_seq, user.0.as_bytes()]).into(),
        ));
        keys.push((Kind::Mentions, at));
    }
    for at in trees
        .tree(Kind::ThreadMarkersByUser)
        .scan_prefix(&prefix)
        .keys()
    {
        let at = at.map_err(backend)?;
        let room_root = &at[16..];
        keys.push((
            Kind::ThreadMarkers,
            key(&[room_root, user.0.as_bytes()]).into(),
        ));
        keys.push((Kind::ThreadMarkersByUser, at));
    }
    Ok(keys)
}

/// Where the root `root` of a thread of `room` is stored, if it is there.
fn root_seq(trees: &Trees, room: RoomId, root: MessageId) -> StoreResult<Option<u64>> {
    let Some(at) = trees.get(Kind::MessageIds, root.0.as_bytes())? else {
        return Ok(None);
    };
    let (in_room, seq) = location(&at)?;
    Ok((in_room == room).then_some(seq))
}

/// The replies left unread in a thread by `user`'s marker.
fn unread(trees: &Trees, room: RoomId, root: &Message, user: UserId) -> StoreResult<(u64, bool)> {
    let at = key(&[
        room.0.as_bytes(),
        &root.seq.to_be_bytes(),
        user.0.as_bytes(),
    ]);
    let (read, following) = marker(trees.get(Kind::ThreadMarkers, at)?)?;
    let count = root.thread.as_ref().map_or(0, |t| t.reply_count);
    Ok((count.saturating_sub(read), following))
}

impl SledStore {
    /// `user`'s unread mentions and followed replies in `room`.
    pub(crate) fn counts_in(&self, room: RoomId, user: UserId) -> StoreResult<UnreadCounts> {
        let trees = &self.trees;
        let member: Option<Member> = read(trees, Kind::Members, member_key(room, user))?;
        let read_seq = member.map_or(u64::MAX, |m| m.last_read_seq);
        let prefix = key(&[user.0.as_bytes(), room.0.as_bytes()]);
        let mut mentions = 0;
        if let Some(first) = read_seq.checked_add(1) {
            let lower = key(&[&prefix, &first.to_be_bytes()]);
            let upper = key(&[&prefix, &u64::MAX.to_be_bytes()]);
            mentions = trees.tree(Kind::Mentions).range(lower..=upper).count() as u64;
        }
        let mut threads = 0;
        for at in trees
            .tree(Kind::ThreadMarkersByUser)
            .scan_prefix(&prefix)
            .keys()
        {
            let root = counter(&at.map_err(backend)?)?;
            let root: Option<Message> = read(trees, Kind::Messages, counter_key(room.0, root))?;
            if let Some(root) = root {
                let (unread, following) = unread(trees, room, &root, user)?;
                if following {
                    threads += unread;
                }
            }
        }
        Ok(UnreadCounts {
            room_id: room,
            mentions,
            threads,
        })
    }

    /// The mentions counted for the room's messages numbered in `seqs`, by sequence
    /// number then user.
    pub(crate) fn mentions_between(
        &self,
        room: RoomId,
        seqs: RangeInclusive<u64>,
    ) -> StoreResult<Vec<Mention>> {
        let scan = (self.trees.tree(Kind::MentionsByMessage)).range(messages_between(room, &seqs));
        let mut found = Vec::new();
        for entry in scan {
            let (at, id) = entry.map_err(backend)?;
            let (Some(place), Some(user)) = (at.get(..24), at.get(24..)) else {
                return Err(backend("unreadable mention"));
            };
            found.push(Mention {
                user: UserId(uuid(user)?),
                seq: counter(place)?,
                message: MessageId(uuid(&id)?),
            });
        }
        Ok(found)
    }

    /// The messages that mention `user`, newest first.
    pub(crate) fn mentions_of(
        &self,
        user: UserId,
        before: Option<MessageId>,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let lower = Bound::Included(user.0.as_bytes().to_vec());
        let upper = match before {
            Some(before) => Bound::Excluded(key(&[user.0.as_bytes(), before.0.as_bytes()])),
            None => Bound::Included(key(&[user.0.as_bytes(), &[0xFF; 16]])),
        };
        let scan = self.trees.tree(Kind::MentionsById).range((lower, upper));
        let mut found = Vec::new();
        for entry in scan.values().rev().take(limit as usize) {
            let at = entry.map_err(backend)?;
            if let Some(message) = read(&self.trees, Kind::Messages, at)? {
                found.push(message);
            }
        }
        Ok(found)
    }
}

#[async_trait]
impl ThreadStore for SledStore {
    async fn replies(
        &self,
        room: RoomId,
        root: MessageId,
        range: SeqRange,
    ) -> StoreResult<Vec<Message>> {
        let Some(root) = root_seq(&self.trees, room, root)? else {
            return Ok(Vec::new());
        };
        let (after, before) = (range.after.unwrap_or(0), range.before.unwrap_or(u64::MAX));
        if after >= before {
            return Ok(Vec::new());
        }
        let prefix = counter_key(room.0, root);
        let bounds = (
            Bound::Excluded(key(&[&prefix, &after.to_be_bytes()])),
            Bound::Excluded(key(&[&prefix, &before.to_be_bytes()])),
        );
        let scan = self.trees.tree(Kind::ThreadReplies).range(bounds).keys();
        let limit = range.limit as usize;
        let keys: Vec<_> = if range.after.is_some() {
            scan.take(limit).collect()
        } else {
            let mut newest: Vec<_> = scan.rev().take(limit).collect();
            newest.reverse();
            newest
        };
        let mut replies = Vec::with_capacity(keys.len());
        for at in keys {
            let seq = counter(&at.map_err(backend)?)?;
            if let Some(reply) = read(&self.trees, Kind::Messages, counter_key(room.0, seq))? {
                replies.push(reply);
            }
        }
        Ok(replies)
    }

    async fn threads(
        &self,
        room: RoomId,
        viewer: UserId,
        before: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<Thread>> {
        let bounds = (
            Bound::Included(counter_key(room.0, 0)),
            Bound::Excluded(counter_key(room.0, before.unwrap_or(u64::MAX))),
        );
        let scan = self.trees.tree(Kind::ThreadActivity).range(bounds).values();
        let mut threads = Vec::new();
        for root in scan.rev().take(limit as usize) {
            let root = counter(&root.map_err(backend)?)?;
            let root: Option<Message> =
                read(&self.trees, Kind::Messages, counter_key(room.0, root))?;
            if let Some(root) = root {
                let (unread, _) = unread(&self.trees, room, &root, viewer)?;
                threads.push(Thread { root, unread });
            }
        }
        Ok(threads)
    }

    async fn repair_thread(
        &self,
        seen: SeenCounters,
        root: MessageId,
        summary: Option<&ThreadSummary>,
    ) -> StoreResult<bool> {
        let room = seen.room;
        let summary = summary.cloned();
        self.write(move |tx| {
            if RoomCounters::of(&tx_room(tx, room)?) != seen.counters {
                return Ok(false);
            }
            let at = tx.get(Kind::MessageIds, root.0.as_bytes())?;
            let at = (at.filter(|at| at.starts_with(room.0.as_bytes())))
                .ok_or(StoreError::NotFound(Entity::Message))?;
            let mut message: Message =
                tx_read(tx, Kind::Messages, &at)?.ok_or(StoreError::NotFound(Entity::Message))?;
            let place = |summary: &ThreadSummary| counter_key(room.0, summary.last_reply_seq);
            if let Some(old) = &message.thread {
                tx.remove(Kind::ThreadActivity, place(old))?;
            }
            if let Some(new) = &summary {
                tx.insert(Kind::ThreadActivity, place(new), &message.seq.to_be_bytes())?;
            }
            message.thread = summary.clone();
            tx_write(tx, Kind::Messages, &at, &message)?;
            Ok(true)
        })
        .await
    }

    async fn thread_markers(&self, room: RoomId) -> StoreResult<Vec<ThreadMarker>> {
        let mut markers = Vec::new();
        // `room ‖ root seq ‖ user`: already in the order asked for.
        for entry in self
            .trees
            .tree(Kind::ThreadMarkers)
            .scan_prefix(room.0.as_bytes())
        {
            let (at, value) = entry.map_err(backend)?;
            let (root, user) = at
                .get(16..)
                .unwrap_or_default()
                .split_at_checked(8)
                .ok_or_else(|| backend("unreadable thread marker key"))?;
            let (read, following) = marker(Some(value))?;
            markers.push(ThreadMarker {
                root_seq: counter(root)?,
                user: UserId(uuid::Uuid::from_slice(user).map_err(backend)?),
                read,
                following,
            });
        }
        Ok(markers)
    }

    async fn mark_thread_read(
        &self,
        room: RoomId,
        root: MessageId,
        user: UserId,
        seq: u64,
    ) -> StoreResult<u64> {
        // The newest reply at or below `seq`, scanned before the write (which runs alone).
        self.write_scanning(
            move |trees| {
                let Some(root) = root_seq(trees, room, root)? else {
                    return Ok(0);
                };
                let prefix = counter_key(room.0, root);
                let upper = key(&[&prefix, &seq.to_be_bytes()]);
                let newest = trees
                    .tree(Kind::ThreadReplies)
                    .range(prefix.to_vec()..=upper);
                match newest.values().next_back() {
                    Some(read) => counter(&read.map_err(backend)?),
                    None => Ok(0),
                }
            },
            move |tx, read| {
                if tx_member(tx, room, user)?.is_none() {
                    return Err(StoreError::NotFound(Entity::Member));
                }
                let at = tx.get(Kind::MessageIds, root.0.as_bytes())?;
                let at = at.ok_or(StoreError::NotFound(Entity::Thread))?;
                let root: Message = tx_read(tx, Kind::Messages, &at)?
                    .filter(|m: &Message| m.room_id == room && m.thread_root.is_none())
                    .ok_or(StoreError::NotFound(Entity::Thread))?;
                let root_seq = root.seq.to_be_bytes();
                let marker_at = key(&[room.0.as_bytes(), &root_seq, user.0.as_bytes()]);
                let (stored, following) = marker(tx.get(Kind::ThreadMarkers, &marker_at)?)?;
                let read = stored.max(*read);
                tx_put_thread_marker(tx, room, root.seq, user, (read, following))?;
                let count = root.thread.map_or(0, |t| t.reply_count);
                Ok(count.saturating_sub(read))
            },
        )
        .await
    }
}
