//! Rooms, direct conversations, memberships and read markers.

use async_trait::async_trait;
use chat_core::store::{MemberStore, ReadMarkerStore, RoomQuery, RoomStore};
use chat_core::{
    Conflict, Entity, Member, Role, Room, RoomId, RoomKind, StoreError, UserId, Visibility,
};
use sled::Transactional;
use sled::transaction::TransactionalTree;

use crate::codec::{
    OrAbort, StoreResult, TxResult, abort, backend, decode, decode_opt, encode, pair, second,
    settled, uuid,
};
use crate::{SledStore, Trees};

/// Rooms are stored with their password hash, which `Room` never serializes.
pub(crate) fn encode_room(room: &Room) -> StoreResult<Vec<u8>> {
    encode(&(room, &room.password_hash))
}

pub(crate) fn decode_room(bytes: &[u8]) -> StoreResult<Room> {
    let (mut room, hash): (Room, Option<String>) = decode(bytes)?;
    room.password_hash = hash;
    Ok(room)
}

/// The room inside a transaction, or an abort with `NotFound(Room)`.
pub(crate) fn tx_room(rooms: &TransactionalTree, id: RoomId) -> TxResult<Room> {
    match rooms.get(id.0.as_bytes())? {
        Some(bytes) => decode_room(&bytes).or_abort(),
        None => abort(StoreError::NotFound(Entity::Room)),
    }
}

pub(crate) fn tx_put_room(rooms: &TransactionalTree, room: &Room) -> TxResult<()> {
    rooms.insert(&room.id.0.as_bytes()[..], encode_room(room).or_abort()?)?;
    Ok(())
}

pub(crate) fn member_key(room: RoomId, user: UserId) -> Vec<u8> {
    pair(room.0, user.0.as_bytes())
}

fn tx_put_member(
    members: &TransactionalTree,
    by_user: &TransactionalTree,
    member: &Member,
) -> TxResult<()> {
    members.insert(
        member_key(member.room_id, member.user_id),
        encode(member).or_abort()?,
    )?;
    by_user.insert(pair(member.user_id.0, member.room_id.0.as_bytes()), &[][..])?;
    Ok(())
}

pub(crate) fn tx_member(
    members: &TransactionalTree,
    room: RoomId,
    user: UserId,
) -> TxResult<Option<Member>> {
    decode_opt(members.get(member_key(room, user))?).or_abort()
}

/// The direct-pair key: the smaller id first.
fn direct_key(a: UserId, b: UserId) -> Vec<u8> {
    let (a, b) = if a <= b { (a, b) } else { (b, a) };
    pair(a.0, b.0.as_bytes())
}

impl Trees {
    fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.rooms
            .get(id.0.as_bytes())
            .map_err(backend)?
            .map(|bytes| decode_room(&bytes))
            .transpose()
    }

    fn members_of(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        self.members
            .scan_prefix(room.0.as_bytes())
            .values()
            .map(|value| decode(&value.map_err(backend)?))
            .collect()
    }
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
        self.write(|t| {
            settled(
                (&t.rooms, &t.aliases, &t.members, &t.members_by_user).transaction(
                    |(rooms, aliases, members, by_user)| {
                        if let Some(alias) = &room.alias {
                            if aliases.get(alias)?.is_some() {
                                return abort(StoreError::Conflict(Conflict::AliasTaken));
                            }
                            aliases.insert(alias.as_str(), &room.id.0.as_bytes()[..])?;
                        }
                        tx_put_room(rooms, &room)?;
                        tx_put_member(members, by_user, &owner)
                    },
                ),
            )
        })
        .await
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        self.trees.room(id)
    }

    async fn room_by_alias(&self, alias: &str) -> StoreResult<Option<Room>> {
        match self.trees.aliases.get(alias).map_err(backend)? {
            Some(id) => self.trees.room(RoomId(uuid(&id)?)),
            None => Ok(None),
        }
    }

    async fn update_room(&self, room: &Room) -> StoreResult<()> {
        self.write(|t| {
            settled((&t.rooms, &t.aliases).transaction(|(rooms, aliases)| {
                let mut stored = tx_room(rooms, room.id)?;
                if stored.alias != room.alias {
                    if let Some(alias) = &room.alias {
                        if aliases.get(alias)?.is_some() {
                            return abort(StoreError::Conflict(Conflict::AliasTaken));
                        }
                        aliases.insert(alias.as_str(), &room.id.0.as_bytes()[..])?;
                    }
                    if let Some(alias) = &stored.alias {
                        aliases.remove(alias.as_str())?;
                    }
                }
                stored.name = room.name.clone();
                stored.topic = room.topic.clone();
                stored.alias = room.alias.clone();
                stored.visibility = room.visibility;
                stored.capacity = room.capacity;
                stored.password_hash = room.password_hash.clone();
                stored.updated_at = room.updated_at;
                tx_put_room(rooms, &stored)
            }))
        })
        .await
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        self.write(|t| {
            let room = t.room(id)?.ok_or(StoreError::NotFound(Entity::Room))?;
            let members = t.members_of(id)?;
            let mut messages = Vec::new();
            for value in t.messages.scan_prefix(id.0.as_bytes()).values() {
                messages.push(decode::<chat_core::Message>(&value.map_err(backend)?)?);
            }
            let changes: Vec<_> = t
                .changes
                .scan_prefix(id.0.as_bytes())
                .keys()
                .collect::<Result<_, _>>()
                .map_err(backend)?;
            settled(
                (
                    &t.rooms,
                    &t.aliases,
                    &t.direct_pairs,
                    &t.members,
                    &t.members_by_user,
                    &t.messages,
                    &t.message_ids,
                    &t.txn_ids,
                    &t.changes,
                )
                    .transaction(
                        |(rooms, aliases, directs, members_tree, by_user, msgs, ids, txns, chg)| {
                            rooms.remove(&id.0.as_bytes()[..])?;
                            if let Some(alias) = &room.alias {
                                aliases.remove(alias.as_str())?;
                            }
                            if room.kind == RoomKind::Direct
                                && let [a, b] = members.as_slice()
                            {
                                directs.remove(direct_key(a.user_id, b.user_id))?;
                            }
                            for member in &members {
                                members_tree.remove(member_key(id, member.user_id))?;
                                by_user.remove(pair(member.user_id.0, id.0.as_bytes()))?;
                            }
                            for message in &messages {
                                msgs.remove(&crate::codec::counter_key(id.0, message.seq)[..])?;
                                ids.remove(&message.id.0.as_bytes()[..])?;
                                if let Some(txn) = &message.txn_id {
                                    txns.remove(pair(message.sender.0, txn.as_bytes()))?;
                                }
                            }
                            for key in &changes {
                                chg.remove(key)?;
                            }
                            Ok(())
                        },
                    ),
            )
        })
        .await
    }

    async fn list_public_rooms(&self, query: &RoomQuery) -> StoreResult<Vec<Room>> {
        let start = match query.after {
            Some(after) => std::ops::Bound::Excluded(after.0.as_bytes().to_vec()),
            None => std::ops::Bound::Unbounded,
        };
        let search = query.search.as_deref().map(str::to_lowercase);
        let mut rooms = Vec::new();
        for value in self
            .trees
            .rooms
            .range::<Vec<u8>, _>((start, std::ops::Bound::Unbounded))
            .values()
        {
            if rooms.len() >= query.limit as usize {
                break;
            }
            let room = decode_room(&value.map_err(backend)?)?;
            if room.kind != RoomKind::Group || room.visibility != Visibility::Public {
                continue;
            }
            let matches = search.as_deref().is_none_or(|needle| {
                room.name.to_lowercase().contains(needle)
                    || room
                        .topic
                        .as_deref()
                        .is_some_and(|topic| topic.to_lowercase().contains(needle))
                    || room
                        .alias
                        .as_deref()
                        .is_some_and(|alias| alias.contains(needle))
            });
            if matches {
                rooms.push(room);
            }
        }
        Ok(rooms)
    }

    async fn rooms_of_user(&self, user: UserId) -> StoreResult<Vec<(Room, Member)>> {
        let t = &self.trees;
        let mut rooms = Vec::new();
        for key in t.members_by_user.scan_prefix(user.0.as_bytes()).keys() {
            let room_id = RoomId(second(&key.map_err(backend)?)?);
            let member =
                decode_opt::<Member>(t.members.get(member_key(room_id, user)).map_err(backend)?)?;
            if let (Some(room), Some(member)) = (t.room(room_id)?, member) {
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
        self.write(|t| {
            settled(
                (&t.direct_pairs, &t.rooms, &t.members, &t.members_by_user).transaction(
                    |(directs, rooms, members_tree, by_user)| {
                        let key = direct_key(members[0].user_id, members[1].user_id);
                        if let Some(existing) = directs.get(&key)? {
                            let id = RoomId(uuid(&existing).or_abort()?);
                            return Ok((tx_room(rooms, id)?, false));
                        }
                        directs.insert(key, &room.id.0.as_bytes()[..])?;
                        tx_put_room(rooms, &room)?;
                        for member in &members {
                            tx_put_member(members_tree, by_user, member)?;
                        }
                        Ok((room.clone(), true))
                    },
                ),
            )
        })
        .await
    }

    async fn direct_room(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>> {
        match self
            .trees
            .direct_pairs
            .get(direct_key(a, b))
            .map_err(backend)?
        {
            Some(id) => self.trees.room(RoomId(uuid(&id)?)),
            None => Ok(None),
        }
    }
}

#[async_trait]
impl MemberStore for SledStore {
    async fn add_member(&self, member: &Member) -> StoreResult<Member> {
        self.write(|t| {
            settled((&t.rooms, &t.members, &t.members_by_user).transaction(
                |(rooms, members, by_user)| {
                    let mut room = tx_room(rooms, member.room_id)?;
                    if tx_member(members, member.room_id, member.user_id)?.is_some() {
                        return abort(StoreError::Conflict(Conflict::AlreadyMember));
                    }
                    if room.capacity.is_some_and(|c| room.member_count >= c) {
                        return abort(StoreError::Conflict(Conflict::RoomFull));
                    }
                    let member = Member {
                        last_read_seq: room.last_seq,
                        ..member.clone()
                    };
                    room.member_count += 1;
                    tx_put_room(rooms, &room)?;
                    tx_put_member(members, by_user, &member)?;
                    Ok(member)
                },
            ))
        })
        .await
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<()> {
        self.write(|t| {
            settled((&t.rooms, &t.members, &t.members_by_user).transaction(
                |(rooms, members, by_user)| {
                    if members.remove(member_key(room, user))?.is_none() {
                        return abort(StoreError::NotFound(Entity::Member));
                    }
                    by_user.remove(pair(user.0, room.0.as_bytes()))?;
                    let mut stored = tx_room(rooms, room)?;
                    stored.member_count = stored.member_count.saturating_sub(1);
                    tx_put_room(rooms, &stored)
                },
            ))
        })
        .await
    }

    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        decode_opt(
            self.trees
                .members
                .get(member_key(room, user))
                .map_err(backend)?,
        )
    }

    async fn members(&self, room: RoomId) -> StoreResult<Vec<Member>> {
        let mut members = self.trees.members_of(room)?;
        members.sort_by_key(|m| (m.joined_at, m.user_id));
        Ok(members)
    }

    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> StoreResult<Member> {
        self.write(|t| {
            settled(t.members.transaction(|members| {
                let Some(member) = tx_member(members, room, user)? else {
                    return abort(StoreError::NotFound(Entity::Member));
                };
                let member = Member { role, ..member };
                members.insert(member_key(room, user), encode(&member).or_abort()?)?;
                Ok(member)
            }))
        })
        .await
    }

    async fn transfer_ownership(&self, room: RoomId, to: UserId) -> StoreResult<()> {
        self.write(|t| {
            settled((&t.rooms, &t.members).transaction(|(rooms, members)| {
                let mut stored = tx_room(rooms, room)?;
                let Some(new_owner) = tx_member(members, room, to)? else {
                    return abort(StoreError::NotFound(Entity::Member));
                };
                if let Some(old) = stored.owner
                    && let Some(old_owner) = tx_member(members, room, old)?
                {
                    let demoted = Member {
                        role: Role::Admin,
                        ..old_owner
                    };
                    members.insert(member_key(room, old), encode(&demoted).or_abort()?)?;
                }
                let promoted = Member {
                    role: Role::Owner,
                    ..new_owner
                };
                members.insert(member_key(room, to), encode(&promoted).or_abort()?)?;
                stored.owner = Some(to);
                tx_put_room(rooms, &stored)
            }))
        })
        .await
    }
}

#[async_trait]
impl ReadMarkerStore for SledStore {
    async fn advance_read_marker(&self, room: RoomId, user: UserId, seq: u64) -> StoreResult<u64> {
        self.write(|t| {
            settled(t.members.transaction(|members| {
                let Some(member) = tx_member(members, room, user)? else {
                    return abort(StoreError::NotFound(Entity::Member));
                };
                let marker = member.last_read_seq.max(seq);
                if marker != member.last_read_seq {
                    let moved = Member {
                        last_read_seq: marker,
                        ..member
                    };
                    members.insert(member_key(room, user), encode(&moved).or_abort()?)?;
                }
                Ok(marker)
            }))
        })
        .await
    }
}
