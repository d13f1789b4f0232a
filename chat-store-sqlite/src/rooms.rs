//! Rooms, direct conversations, memberships and read markers.

use async_trait::async_trait;
use chat_core::store::{
    Departure, MemberQuery, MemberStore, ReadMarkerStore, RoomCounters, RoomQuery, RoomStore,
    SeenCounters, fold, room_search_text, successor,
};
use chat_core::{Conflict, Entity, Member, Role, Room, RoomId, StoreError, UnreadCounts, UserId};
use sqlx::{Row, SqliteConnection};

use crate::SqliteStore;
use crate::codec::{self, StoreResult, int, map_err, member_columns, micros, room_columns};

pub(crate) async fn insert_room(
    c: &mut SqliteConnection,
    room: &Room,
    member_count: u32,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO rooms (id, kind, name, topic, alias, visibility, capacity, password_hash, \
         owner, member_count, last_seq, last_change, created_at, updated_at, search) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?)",
    )
    .bind(room.id.0)
    .bind(room.kind.as_str())
    .bind(&room.name)
    .bind(&room.topic)
    .bind(&room.alias)
    .bind(room.visibility.as_str())
    .bind(room.capacity.map(i64::from))
    .bind(&room.password_hash)
    .bind(room.owner.map(|owner| owner.0))
    .bind(i64::from(member_count))
    .bind(micros(room.created_at))
    .bind(micros(room.updated_at))
    .bind(room_search_text(room))
    .execute(c)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_member(c: &mut SqliteConnection, member: &Member) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO members (room_id, user_id, role, joined_at, last_read_seq) \
         VALUES (?, ?, ?, ?, ?)",
    )
    .bind(member.room_id.0)
    .bind(member.user_id.0)
    .bind(member.role.as_str())
    .bind(micros(member.joined_at))
    .bind(int(member.last_read_seq))
    .execute(c)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn fetch_room(c: &mut SqliteConnection, id: RoomId) -> StoreResult<Option<Room>> {
    let sql = concat!("SELECT ", room_columns!(), " FROM rooms r WHERE r.id = ?");
    sqlx::query(sql)
        .bind(id.0)
        .fetch_optional(c)
        .await
        .map_err(map_err)?
        .map(|row| codec::room(&row))
        .transpose()
}

async fn fetch_member(
    c: &mut SqliteConnection,
    room: RoomId,
    user: UserId,
) -> StoreResult<Option<Member>> {
    let sql = concat!(
        "SELECT ",
        member_columns!(),
        " FROM members m WHERE m.room_id = ? AND m.user_id = ?"
    );
    sqlx::query(sql)
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(c)
        .await
        .map_err(map_err)?
        .map(|row| codec::member(&row))
        .transpose()
}

/// The room's members, ordered by `joined_at`, then user id.
async fn fetch_members(c: &mut SqliteConnection, room: RoomId) -> StoreResult<Vec<Member>> {
    let sql = concat!(
        "SELECT ",
        member_columns!(),
        " FROM members m WHERE m.room_id = ? \
         ORDER BY m.joined_at, m.user_id"
    );
    sqlx::query(sql)
        .bind(room.0)
        .fetch_all(c)
        .await
        .map_err(map_err)?
        .iter()
        .map(codec::member)
        .collect()
}

/// The pair key of a direct conversation: the smaller id first.
fn ordered(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b { (a, b) } else { (b, a) }
}

/// Whether the room's counters are `seen` (inside a write, which nothing else can come
/// between). Errors: `NotFound(Room)`.
pub(crate) async fn counters_are(
    c: &mut SqliteConnection,
    room: RoomId,
    seen: RoomCounters,
) -> StoreResult<bool> {
    let stored: Option<(i64, i64, i64)> =
        sqlx::query_as("SELECT last_seq, last_change, member_count FROM rooms WHERE id = ?")
            .bind(room.0)
            .fetch_optional(c)
            .await
            .map_err(map_err)?;
    let stored = stored.ok_or(StoreError::NotFound(Entity::Room))?;
    let seen = (
        int(seen.last_seq),
        int(seen.last_change),
        i64::from(seen.member_count),
    );
    Ok(stored == seen)
}

impl SqliteStore {
    /// Rooms by id after `after`, whose folded fields hold `search`; public group rooms only
    /// when `public_only`.
    async fn rooms_page(
        &self,
        after: Option<RoomId>,
        search: Option<String>,
        limit: u32,
        public_only: bool,
    ) -> StoreResult<Vec<Room>> {
        let sql = concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms r \
             WHERE (NOT ?4 OR (r.kind = 'group' AND r.visibility = 'public')) \
               AND (?1 IS NULL OR r.id > ?1) \
               AND (?2 IS NULL OR instr(r.search, ?2) > 0) \
             ORDER BY r.id LIMIT ?3"
        );
        sqlx::query(sql)
            .bind(after.map(|id| id.0))
            .bind(search)
            .bind(i64::from(limit))
            .bind(public_only)
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::room)
            .collect()
    }
}

#[async_trait]
impl RoomStore for SqliteStore {
    async fn create_room(&self, room: &Room, owner: &Member) -> StoreResult<()> {
        let (room, owner) = (room.clone(), owner.clone());
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    insert_room(&mut *c, &room, 1).await?;
                    let owner = Member {
                        last_read_seq: 0,
                        ..owner
                    };
                    insert_member(c, &owner).await
                })
            })
            .await
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        let mut c = self.readers.acquire().await.map_err(map_err)?;
        fetch_room(&mut c, id).await
    }

    async fn room_by_alias(&self, alias: &str) -> StoreResult<Option<Room>> {
        let sql = concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms r WHERE r.alias = ?"
        );
        sqlx::query(sql)
            .bind(alias)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?
            .map(|row| codec::room(&row))
            .transpose()
    }

    async fn update_room(&self, room: &Room) -> StoreResult<()> {
        let room = room.clone();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query(
                        "UPDATE rooms SET name = ?, topic = ?, alias = ?, visibility = ?, \
                         capacity = ?, password_hash = ?, updated_at = ?, search = ? WHERE id = ?",
                    )
                    .bind(&room.name)
                    .bind(&room.topic)
                    .bind(&room.alias)
                    .bind(room.visibility.as_str())
                    .bind(room.capacity.map(i64::from))
                    .bind(&room.password_hash)
                    .bind(micros(room.updated_at))
                    .bind(room_search_text(&room))
                    .bind(room.id.0)
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(Entity::Room));
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    // Members, messages and the direct pair go with it (ON DELETE CASCADE).
                    let done = sqlx::query("DELETE FROM rooms WHERE id = ?")
                        .bind(id.0)
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(Entity::Room));
                    }
                    Ok(())
                })
            })
            .await
    }

    async fn list_public_rooms(&self, query: &RoomQuery) -> StoreResult<Vec<Room>> {
        let search = query.search.as_deref().map(fold);
        self.rooms_page(query.after, search, query.limit, true)
            .await
    }

    async fn list_rooms(&self, after: Option<RoomId>, limit: u32) -> StoreResult<Vec<Room>> {
        self.rooms_page(after, None, limit, false).await
    }

    async fn repair_counters(&self, seen: SeenCounters, fixed: RoomCounters) -> StoreResult<bool> {
        let room = seen.room;
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    if !counters_are(c, room, seen.counters).await? {
                        return Ok(false);
                    }
                    sqlx::query(
                        "UPDATE rooms SET last_seq = ?2, last_change = ?3, member_count = ?4 \
                         WHERE id = ?1",
                    )
                    .bind(room.0)
                    .bind(int(fixed.last_seq))
                    .bind(int(fixed.last_change))
                    .bind(i64::from(fixed.member_count))
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    sqlx::query(
                        "UPDATE members SET last_read_seq = ?2 \
                         WHERE room_id = ?1 AND last_read_seq > ?2",
                    )
                    .bind(room.0)
                    .bind(int(fixed.last_seq))
                    .execute(c)
                    .await
                    .map_err(map_err)?;
                    Ok(true)
                })
            })
            .await
    }

    async fn rooms_of_user(
        &self,
        user: UserId,
        query: &RoomQuery,
    ) -> StoreResult<Vec<(Room, Member)>> {
        let sql = concat!(
            "SELECT ",
            room_columns!(),
            ", ",
            member_columns!(),
            " FROM members m JOIN rooms r ON r.id = m.room_id \
             WHERE m.user_id = ?1 AND (?2 IS NULL OR m.room_id > ?2) \
               AND (?3 IS NULL OR instr(r.search, ?3) > 0) \
             ORDER BY m.room_id LIMIT ?4"
        );
        sqlx::query(sql)
            .bind(user.0)
            .bind(query.after.map(|id| id.0))
            .bind(query.search.as_deref().map(fold))
            .bind(i64::from(query.limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?
            .iter()
            .map(|row| Ok((codec::room(row)?, codec::member(row)?)))
            .collect()
    }

    async fn find_or_create_direct(
        &self,
        room: &Room,
        members: [&Member; 2],
    ) -> StoreResult<(Room, bool)> {
        let room = room.clone();
        let members = [members[0].clone(), members[1].clone()];
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let (a, b) = ordered(members[0].user_id, members[1].user_id);
                    let existing: Option<uuid::Uuid> = sqlx::query_scalar(
                        "SELECT room_id FROM direct_pairs WHERE user_a = ? AND user_b = ?",
                    )
                    .bind(a.0)
                    .bind(b.0)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(map_err)?;
                    if let Some(id) = existing {
                        let room = fetch_room(c, RoomId(id))
                            .await?
                            .ok_or(StoreError::NotFound(Entity::Room))?;
                        return Ok((room, false));
                    }
                    insert_room(&mut *c, &room, 2).await?;
                    sqlx::query(
                        "INSERT INTO direct_pairs (user_a, user_b, room_id) VALUES (?, ?, ?)",
                    )
                    .bind(a.0)
                    .bind(b.0)
                    .bind(room.id.0)
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    for member in &members {
                        let member = Member {
                            last_read_seq: 0,
                            ..member.clone()
                        };
                        insert_member(&mut *c, &member).await?;
                    }
                    let room = Room {
                        member_count: 2,
                        last_seq: 0,
                        last_change: 0,
                        ..room
                    };
                    Ok((room, true))
                })
            })
            .await
    }

    async fn direct_room(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>> {
        let (a, b) = ordered(a, b);
        let sql = concat!(
            "SELECT ",
            room_columns!(),
            " FROM direct_pairs d JOIN rooms r ON r.id = d.room_id \
             WHERE d.user_a = ? AND d.user_b = ?"
        );
        sqlx::query(sql)
            .bind(a.0)
            .bind(b.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?
            .map(|row| codec::room(&row))
            .transpose()
    }
}

#[async_trait]
impl MemberStore for SqliteStore {
    async fn add_member(&self, member: &Member) -> StoreResult<Member> {
        let member = member.clone();
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let room = sqlx::query(
                        "SELECT capacity, member_count, last_seq FROM rooms WHERE id = ?",
                    )
                    .bind(member.room_id.0)
                    .fetch_optional(&mut *c)
                    .await
                    .map_err(map_err)?
                    .ok_or(StoreError::NotFound(Entity::Room))?;
                    let capacity: Option<i64> = room.try_get("capacity").map_err(map_err)?;
                    let count: i64 = room.try_get("member_count").map_err(map_err)?;
                    let last_seq: i64 = room.try_get("last_seq").map_err(map_err)?;
                    if fetch_member(&mut *c, member.room_id, member.user_id)
                        .await?
                        .is_some()
                    {
                        return Err(StoreError::Conflict(Conflict::AlreadyMember));
                    }
                    if capacity.is_some_and(|capacity| count >= capacity) {
                        return Err(StoreError::Conflict(Conflict::RoomFull));
                    }
                    let member = Member {
                        last_read_seq: u64::try_from(last_seq).unwrap_or_default(),
                        ..member
                    };
                    insert_member(&mut *c, &member).await?;
                    sqlx::query("UPDATE rooms SET member_count = member_count + 1 WHERE id = ?")
                        .bind(member.room_id.0)
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    Ok(member)
                })
            })
            .await
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<Departure> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let done = sqlx::query("DELETE FROM members WHERE room_id = ? AND user_id = ?")
                        .bind(room.0)
                        .bind(user.0)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound(Entity::Member));
                    }
                    sqlx::query("UPDATE rooms SET member_count = member_count - 1 WHERE id = ?")
                        .bind(room.0)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    let stored = fetch_room(&mut *c, room)
                        .await?
                        .ok_or(StoreError::NotFound(Entity::Room))?;
                    if stored.member_count == 0 {
                        // Its messages go with it (ON DELETE CASCADE).
                        sqlx::query("DELETE FROM rooms WHERE id = ?")
                            .bind(room.0)
                            .execute(c)
                            .await
                            .map_err(map_err)?;
                        return Ok(Departure::RoomDeleted);
                    }
                    if stored.owner != Some(user) {
                        return Ok(Departure::Left { new_owner: None });
                    }
                    let members = fetch_members(&mut *c, room).await?;
                    let next =
                        successor(&members, user).ok_or(StoreError::NotFound(Entity::Member))?;
                    let next = Member {
                        role: Role::Owner,
                        ..next.clone()
                    };
                    sqlx::query(
                        "UPDATE members SET role = 'owner' WHERE room_id = ? AND user_id = ?",
                    )
                    .bind(room.0)
                    .bind(next.user_id.0)
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    sqlx::query("UPDATE rooms SET owner = ? WHERE id = ?")
                        .bind(next.user_id.0)
                        .bind(room.0)
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    Ok(Departure::Left {
                        new_owner: Some(next),
                    })
                })
            })
            .await
    }

    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        let mut c = self.readers.acquire().await.map_err(map_err)?;
        fetch_member(&mut c, room, user).await
    }

    async fn room_with_member(
        &self,
        room: RoomId,
        user: UserId,
    ) -> StoreResult<Option<(Room, Option<Member>)>> {
        let sql = concat!(
            "SELECT ",
            room_columns!(),
            ", ",
            member_columns!(),
            " FROM rooms r LEFT JOIN members m ON m.room_id = r.id AND m.user_id = ? \
             WHERE r.id = ?"
        );
        let Some(row) = sqlx::query(sql)
            .bind(user.0)
            .bind(room.0)
            .fetch_optional(&self.readers)
            .await
            .map_err(map_err)?
        else {
            return Ok(None);
        };
        let is_member = row
            .try_get::<Option<String>, _>("role")
            .map_err(map_err)?
            .is_some();
        let member = if is_member {
            Some(codec::member(&row)?)
        } else {
            None
        };
        Ok(Some((codec::room(&row)?, member)))
    }

    async fn members(&self, room: RoomId, query: &MemberQuery) -> StoreResult<Vec<Member>> {
        let sql = concat!(
            "SELECT ",
            member_columns!(),
            " FROM members m WHERE m.room_id = ?1 \
               AND (?2 IS NULL OR (m.joined_at, m.user_id) > (?2, ?3)) \
             ORDER BY m.joined_at, m.user_id LIMIT ?4"
        );
        let after = query.after.as_ref();
        sqlx::query(sql)
            .bind(room.0)
            .bind(after.map(|cursor| micros(cursor.joined_at)))
            .bind(after.map(|cursor| cursor.user_id.0))
            .bind(i64::from(query.limit))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::member)
            .collect()
    }

    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> StoreResult<Member> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let sql = concat!(
                        "UPDATE members SET role = ? WHERE room_id = ? AND user_id = ? \
                         RETURNING ",
                        member_columns!()
                    );
                    sqlx::query(sql)
                        .bind(role.as_str())
                        .bind(room.0)
                        .bind(user.0)
                        .fetch_optional(c)
                        .await
                        .map_err(map_err)?
                        .map(|row| codec::member(&row))
                        .transpose()?
                        .ok_or(StoreError::NotFound(Entity::Member))
                })
            })
            .await
    }

    async fn transfer_ownership(&self, room: RoomId, to: UserId) -> StoreResult<()> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let owner = fetch_room(&mut *c, room)
                        .await?
                        .ok_or(StoreError::NotFound(Entity::Room))?
                        .owner;
                    if fetch_member(&mut *c, room, to).await?.is_none() {
                        return Err(StoreError::NotFound(Entity::Member));
                    }
                    if let Some(owner) = owner {
                        sqlx::query(
                            "UPDATE members SET role = 'admin' WHERE room_id = ? AND user_id = ?",
                        )
                        .bind(room.0)
                        .bind(owner.0)
                        .execute(&mut *c)
                        .await
                        .map_err(map_err)?;
                    }
                    sqlx::query(
                        "UPDATE members SET role = 'owner' WHERE room_id = ? AND user_id = ?",
                    )
                    .bind(room.0)
                    .bind(to.0)
                    .execute(&mut *c)
                    .await
                    .map_err(map_err)?;
                    sqlx::query("UPDATE rooms SET owner = ? WHERE id = ?")
                        .bind(to.0)
                        .bind(room.0)
                        .execute(c)
                        .await
                        .map_err(map_err)?;
                    Ok(())
                })
            })
            .await
    }
}

#[async_trait]
impl ReadMarkerStore for SqliteStore {
    async fn advance_read_marker(&self, room: RoomId, user: UserId, seq: u64) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                Box::pin(async move {
                    let marker: Option<i64> = sqlx::query_scalar(
                        "UPDATE members SET last_read_seq = max(last_read_seq, ?) \
                         WHERE room_id = ? AND user_id = ? RETURNING last_read_seq",
                    )
                    .bind(int(seq))
                    .bind(room.0)
                    .bind(user.0)
                    .fetch_optional(c)
                    .await
                    .map_err(map_err)?;
                    let marker = marker.ok_or(StoreError::NotFound(Entity::Member))?;
                    Ok(u64::try_from(marker).unwrap_or_default())
                })
            })
            .await
    }

    async fn unread_counts(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> StoreResult<Vec<UnreadCounts>> {
        sqlx::query(crate::threads::UNREAD_COUNTS)
            .bind(user.0)
            .bind(room.map(|room| room.0))
            .fetch_all(&self.readers)
            .await
            .map_err(map_err)?
            .iter()
            .map(crate::threads::unread_counts)
            .collect()
    }
}
