//! Rooms, direct conversations, memberships and read markers.

use async_trait::async_trait;
use chat_core::store::{
    Departure, MemberQuery, MemberStore, ReadMarkerStore, RoomCounters, RoomQuery, RoomStore,
    SeenCounters, successor,
};
use chat_core::{
    Conflict, Entity, Member, Message, Role, Room, RoomId, RoomKind, StoreError, UnreadCounts,
    UserId, Visibility,
};

use sled::IVec;

use crate::SledStore;
use crate::codec::{
    StoreResult, backend, counter_key, decode, encode, pair, read, second, tx_read, tx_write, uuid,
};
use crate::reactions::reaction_keys;
use crate::threads::{member_keys, mention_and_thread_keys};
use crate::tx::{Kind, Trees, Tx};

/// The room inside a write.
pub(crate) fn tx_room(tx: &Tx<'_>, id: RoomId) -> StoreResult<Room> {
    match tx.get(Kind::Rooms, id.0.as_bytes())? {
        Some(bytes) => decode(&bytes),
        None => Err(StoreError::NotFound(Entity::Room)),
    }
}

pub(crate) fn tx_put_room(tx: &Tx<'_>, room: &Room) -> StoreResult<()> {
    tx.insert(Kind::Rooms, room.id.0.as_bytes(), encode(room)?)
}

pub(crate) fn member_key(room: RoomId, user: UserId) -> Vec<u8> {
    pair(room.0, user.0.as_bytes())
}

pub(crate) fn tx_member(tx: &Tx<'_>, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
    tx_read(tx, Kind::Members, member_key(room, user))
}

pub(crate) fn tx_put_member(tx: &Tx<'_>, member: &Member) -> StoreResult<()> {
    tx_write(
        tx,
        Kind::Members,
        member_key(member.room_id, member.user_id),
        member,
    )?;
    tx.insert(
        Kind::MembersByUser,
        pair(member.user_id.0, member.room_id.0.as_bytes()),
        &[],
    )
}

/// The direct-pair key: the smaller id first.
pub(crate) fn direct_key(a: UserId, b: UserId) -> Vec<u8> {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    pair(a.0, b.0.as_bytes())
}

fn room(trees: &Trees, id: RoomId) -> StoreResult<Option<Room>> {
    trees
        .get(Kind::Rooms, id.0.as_bytes())?
        .map(|bytes| decode::<Room>(&bytes))
        .transpose()
}

pub(crate) fn members_of(trees: &Trees, room: RoomId) -> StoreResult<Vec<Member>> {
    trees
        .tree(Kind::Members)
        .scan_prefix(room.0.as_bytes())
        .values()
        .map(|value| decode(&value.map_err(backend)?))
        .collect()
}

fn messages_of(trees: &Trees, room: RoomId) -> StoreResult<Vec<Message>> {
    trees
        .tree(Kind::Messages)
        .scan_prefix(room.0.as_bytes())
        .values()
        .map(|value| decode(&value.map_err(backend)?))
        .collect()
}

/// The keys of a room's reactions, mentions and threads, to remove with it.
fn contents_keys(trees: &Trees, room: RoomId) -> StoreResult<Vec<(Kind, IVec)>> {
    let mut keys = reaction_keys(trees, room.0.as_bytes())?;
    keys.extend(mention_and_thread_keys(trees, room.0.as_bytes(), true)?);
    Ok(keys)
}

/// Deletes a room with everything it holds, as scanned before the write.
fn tx_delete_room(
    tx: &Tx<'_>,
    id: RoomId,
    members: &[Member],
    messages: &[Message],
    reactions: &[(Kind, IVec)],
) -> StoreResult<()> {
    let room = tx_room(tx, id)?;
    tx.remove(Kind::Rooms, id.0.as_bytes())?;
    if let Some(alias) = &room.alias {
        tx.remove(Kind::Aliases, alias)?;
    }
    if room.kind == RoomKind::Direct
        && let [a, b] = members
    {
        tx.remove(Kind::DirectPairs, direct_key(a.user_id, b.user_id))?;
    }
    for member in members {
        tx.remove(Kind::Members, member_key(id, member.user_id))?;
        tx.remove(Kind::MembersByUser, pair(member.user_id.0, id.0.as_bytes()))?;
    }
    for message in messages {
        if !message.is_deleted() {
            crate::search::tx_unindex(tx, message, &message.body)?;
        }
        tx.remove(Kind::Messages, counter_key(id.0, message.seq))?;
        tx.remove(Kind::MessageIds, message.id.0.as_bytes())?;
        tx.remove(Kind::Changes, counter_key(id.0, message.change_id))?;
        if let Some(txn) = &message.txn_id {
            tx.remove(Kind::TxnIds, pair(message.sender.0, txn.as_bytes()))?;
        }
    }
    for (kind, key) in reactions {
        tx.remove(*kind, key)?;
    }
    Ok(())
}

#[async_trait]
impl RoomStore for SledStore {
    async fn create_room(&self, room: &Room, owner: &Member) -> StoreResult<()> {
        let room = Room {
            member_count: 1,
            last_seq: 0,
            last_change: 0,
            ..room.clone()
        };
        let owner = Member {
            last_read_seq: 0,
            ..owner.clone()
        };
        self.write(move |tx| {
            if let Some(alias) = &room.alias {
                if tx.get(Kind::Aliases, alias)?.is_some() {
                    return Err(StoreError::Conflict(Conflict::AliasTaken));
                }
                tx.insert(Kind::Aliases, alias, room.id.0.as_bytes())?;
            }
            tx_put_room(tx, &room)?;
            tx_put_member(tx, &owner)
        })
        .await
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        room(&self.trees, id)
    }

    async fn room_by_alias(&self, alias: &str) -> StoreResult<Option<Room>> {
        match self.trees.get(Kind::Aliases, alias)? {
            Some(id) => room(&self.trees, RoomId(uuid(&id)?)),
            None => Ok(None),
        }
    }

    async fn update_room(&self, room: &Room) -> StoreResult<()> {
        let room = room.clone();
        self.write(move |tx| {
            let mut stored = tx_room(tx, room.id)?;
            let new_alias = stored.alias != room.alias;
            if new_alias
                && let Some(alias) = &room.alias
                && tx.get(Kind::Aliases, alias)?.is_some()
            {
                return Err(StoreError::Conflict(Conflict::AliasTaken));
            }
            if new_alias {
                if let Some(alias) = &stored.alias {
                    tx.remove(Kind::Aliases, alias)?;
                }
                if let Some(alias) = &room.alias {
                    tx.insert(Kind::Aliases, alias, room.id.0.as_bytes())?;
                }
            }
            stored.name = room.name.clone();
            stored.topic = room.topic.clone();
            stored.alias = room.alias.clone();
            stored.visibility = room.visibility;
            stored.capacity = room.capacity;
            stored.password_hash = room.password_hash.clone();
            stored.updated_at = room.updated_at;
            tx_put_room(tx, &stored)
        })
        .await
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        self.write_scanning(
            move |trees| {
                let keys = contents_keys(trees, id)?;
                Ok((members_of(trees, id)?, messages_of(trees, id)?, keys))
            },
            move |tx, (members, messages, reactions)| {
                tx_delete_room(tx, id, members, messages, reactions)
            },
        )
        .await
    }

    async fn list_public_rooms(&self, query: &RoomQuery) -> StoreResult<Vec<Room>> {
        let start = match query.after {
            Some(after) => std::ops::Bound::Excluded(after.0.as_bytes().to_vec()),
            None => std::ops::Bound::Unbounded,
        };
        let mut rooms = Vec::new();
        let scan = self
            .trees
            .tree(Kind::Rooms)
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded));
        for value in scan.values() {
            if rooms.len() >= query.limit as usize {
                break;
            }
            let room = decode::<Room>(&value.map_err(backend)?)?;
            if room.kind != RoomKind::Group || room.visibility != Visibility::Public {
                continue;
            }
            if query.matches(&room) {
                rooms.push(room);
            }
        }
        Ok(rooms)
    }

    async fn list_rooms(&self, after: Option<RoomId>, limit: u32) -> StoreResult<Vec<Room>> {
        let start = match after {
            Some(after) => std::ops::Bound::Excluded(after.0.as_bytes().to_vec()),
            None => std::ops::Bound::Unbounded,
        };
        let scan = self
            .trees
            .tree(Kind::Rooms)
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded));
        scan.values()
            .take(limit as usize)
            .map(|value| decode::<Room>(&value.map_err(backend)?))
            .collect()
    }

    async fn repair_counters(&self, seen: SeenCounters, fixed: RoomCounters) -> StoreResult<bool> {
        let room = seen.room;
        self.write_scanning(
            move |trees| members_of(trees, room),
            move |tx, members| {
                let mut stored = tx_room(tx, room)?;
                if RoomCounters::of(&stored) != seen.counters {
                    return Ok(false);
                }
                stored.last_seq = fixed.last_seq;
                stored.last_change = fixed.last_change;
                stored.member_count = fixed.member_count;
                tx_put_room(tx, &stored)?;
                for member in members {
                    if member.last_read_seq > fixed.last_seq {
                        let mut member = member.clone();
                        member.last_read_seq = fixed.last_seq;
                        tx_put_member(tx, &member)?;
                    }
                }
                Ok(true)
            },
        )
        .await
    }

    async fn rooms_of_user(
        &self,
        user: UserId,
        query: &RoomQuery,
    ) -> StoreResult<Vec<(Room, Member)>> {
        let prefix = user.0.as_bytes();
        let start = match query.after {
            Some(after) => std::ops::Bound::Excluded(pair(user.0, after.0.as_bytes())),
            None => std::ops::Bound::Included(prefix.to_vec()),
        };
        let mut rooms = Vec::new();
        let scan = self
            .trees
            .tree(Kind::MembersByUser)
            .range((start, std::ops::Bound::Unbounded));
        for key in scan.keys() {
            if rooms.len() >= query.limit as usize {
                break;
            }
            let key = key.map_err(backend)?;
            if !key.starts_with(prefix) {
                break;
            }
            let room_id = RoomId(second(&key)?);
            let member = read::<Member>(&self.trees, Kind::Members, member_key(room_id, user))?;
            if let (Some(room), Some(member)) = (room(&self.trees, room_id)?, member)
                && query.matches(&room)
            {
                rooms.push((room, member));
            }
        }
        Ok(rooms)
    }

    async fn find_or_create_direct(
        &self,
        room: &Room,
        members: [&Member; 2],
    ) -> StoreResult<(Room, bool)> {
        let room = Room {
            member_count: 2,
            last_seq: 0,
            last_change: 0,
            ..room.clone()
        };
        let members = members.map(|m| Member {
            last_read_seq: 0,
            ..m.clone()
        });
        self.write(move |tx| {
            let key = direct_key(members[0].user_id, members[1].user_id);
            if let Some(existing) = tx.get(Kind::DirectPairs, &key)? {
                return Ok((tx_room(tx, RoomId(uuid(&existing)?))?, false));
            }
            tx.insert(Kind::DirectPairs, &key, room.id.0.as_bytes())?;
            tx_put_room(tx, &room)?;
            for member in &members {
                tx_put_member(tx, member)?;
            }
            Ok((room.clone(), true))
        })
        .await
    }

    async fn direct_room(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>> {
        match self.trees.get(Kind::DirectPairs, direct_key(a, b))? {
            Some(id) => room(&self.trees, RoomId(uuid(&id)?)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl MemberStore for SledStore {
    async fn add_member(&self, member: &Member) -> StoreResult<Member> {
        let member = member.clone();
        self.write(move |tx| {
            let mut room = tx_room(tx, member.room_id)?;
            if tx_member(tx, member.room_id, member.user_id)?.is_some() {
                return Err(StoreError::Conflict(Conflict::AlreadyMember));
            }
            if room.capacity.is_some_and(|c| room.member_count >= c) {
                return Err(StoreError::Conflict(Conflict::RoomFull));
            }
            let member = Member {
                last_read_seq: room.last_seq,
                ..member.clone()
            };
            room.member_count += 1;
            tx_put_room(tx, &room)?;
            tx_put_member(tx, &member)?;
            Ok(member)
        })
        .await
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<Departure> {
        // The writer runs a scanning write in a batch of its own, so what the scan found is
        // still true when the transaction runs.
        self.write_scanning(
            move |trees| {
                let members = members_of(trees, room)?;
                let last = members.iter().all(|m| m.user_id == user);
                let contents = if last {
                    let keys = contents_keys(trees, room)?;
                    Some((messages_of(trees, room)?, keys))
                } else {
                    None
                };
                Ok((members, contents, member_keys(trees, room, user)?))
            },
            move |tx, (members, contents, mine)| {
                tx_member(tx, room, user)?.ok_or(StoreError::NotFound(Entity::Member))?;
                if let Some((messages, keys)) = contents {
                    tx_delete_room(tx, room, members, messages, keys)?;
                    return Ok(Departure::RoomDeleted);
                }
                for (kind, key) in mine {
                    tx.remove(*kind, key)?;
                }
                let mut stored = tx_room(tx, room)?;
                tx.remove(Kind::Members, member_key(room, user))?;
                tx.remove(Kind::MembersByUser, pair(user.0, room.0.as_bytes()))?;
                stored.member_count = stored.member_count.saturating_sub(1);
                let mut new_owner = None;
                if stored.owner == Some(user) {
                    let next =
                        successor(members, user).ok_or(StoreError::NotFound(Entity::Member))?;
                    let next = Member {
                        role: Role::Owner,
                        ..next.clone()
                    };
                    tx_write(tx, Kind::Members, member_key(room, next.user_id), &next)?;
                    stored.owner = Some(next.user_id);
                    new_owner = Some(next);
                }
                tx_put_room(tx, &stored)?;
                Ok(Departure::Left { new_owner })
            },
        )
        .await
    }

    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        read(&self.trees, Kind::Members, member_key(room, user))
    }

    async fn members(&self, room: RoomId, query: &MemberQuery) -> StoreResult<Vec<Member>> {
        // Keyed by user, so a page reads the room's whole member list: bounded by the room's
        // capacity. An index by joining time would make it a range read.
        Ok(query.page(members_of(&self.trees, room)?))
    }

    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> StoreResult<Member> {
        self.write(move |tx| {
            let member = tx_member(tx, room, user)?.ok_or(StoreError::NotFound(Entity::Member))?;
            let member = Member { role, ..member };
            tx_write(tx, Kind::Members, member_key(room, user), &member)?;
            Ok(member)
        })
        .await
    }

    async fn transfer_ownership(&self, room: RoomId, to: UserId) -> StoreResult<()> {
        self.write(move |tx| {
            let mut stored = tx_room(tx, room)?;
            let new_owner = tx_member(tx, room, to)?.ok_or(StoreError::NotFound(Entity::Member))?;
            let old_owner = match stored.owner {
                Some(old) => tx_member(tx, room, old)?,
                None => None,
            };
            if let Some(old_owner) = old_owner {
                let demoted = Member {
                    role: Role::Admin,
                    ..old_owner
                };
                tx_write(
                    tx,
                    Kind::Members,
                    member_key(room, demoted.user_id),
                    &demoted,
                )?;
            }
            let promoted = Member {
                role: Role::Owner,
                ..new_owner
            };
            tx_write(tx, Kind::Members, member_key(room, to), &promoted)?;
            stored.owner = Some(to);
            tx_put_room(tx, &stored)
        })
        .await
    }
}

#[async_trait]
impl ReadMarkerStore for SledStore {
    async fn advance_read_marker(&self, room: RoomId, user: UserId, seq: u64) -> StoreResult<u64> {
        self.write(move |tx| {
            let member = tx_member(tx, room, user)?.ok_or(StoreError::NotFound(Entity::Member))?;
            let marker = member.last_read_seq.max(seq);
            if marker != member.last_read_seq {
                let moved = Member {
                    last_read_seq: marker,
                    ..member
                };
                tx_write(tx, Kind::Members, member_key(room, user), &moved)?;
            }
            Ok(marker)
        })
        .await
    }

    async fn unread_counts(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> StoreResult<Vec<UnreadCounts>> {
        let rooms = match room {
            Some(room) => vec![room],
            None => {
                let scan = self
                    .trees
                    .tree(Kind::MembersByUser)
                    .scan_prefix(user.0.as_bytes());
                scan.keys()
                    .map(|key| Ok(RoomId(second(&key.map_err(backend)?)?)))
                    .collect::<StoreResult<_>>()?
            }
        };
        let mut counts = Vec::new();
        for room in rooms {
            let room = self.counts_in(room, user)?;
            if room.mentions > 0 || room.threads > 0 {
                counts.push(room);
            }
        }
        Ok(counts)
    }
}
