//! Rooms, direct conversations, memberships and read markers. What changes a room's members
//! locks the room's row first, so concurrent joins, departures and ownership changes of one
//! room happen one after the other, on any number of engines.

use async_trait::async_trait;
use chat_core::store::{
    Departure, MemberQuery, MemberStore, ReadMarkerStore, RoomCounters, RoomQuery, RoomStore,
    SeenCounters, fold, room_search_text, successor,
};
use chat_core::{Conflict, Entity, Member, Role, Room, RoomId, StoreError, UnreadCounts, UserId};
use sqlx::PgConnection;

use crate::PostgresStore;
use crate::codec::{self, StoreResult, int, map_err, member_columns, room_columns};

pub(crate) async fn insert_room(
    c: &mut PgConnection,
    room: &Room,
    member_count: u32,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO rooms (id, kind, name, topic, alias, visibility, capacity, password_hash, \
         owner, member_count, last_seq, last_change, created_at, updated_at, search) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, $11, $12, $13)",
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
    .bind(room.created_at)
    .bind(room.updated_at)
    .bind(room_search_text(room))
    .execute(c)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Inserts a member with its read marker at 0 (or at the room's newest message, for `add`).
async fn insert_member(c: &mut PgConnection, member: &Member) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO members (room_id, user_id, role, joined_at, last_read_seq) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(member.room_id.0)
    .bind(member.user_id.0)
    .bind(member.role.as_str())
    .bind(member.joined_at)
    .bind(int(member.last_read_seq))
    .execute(c)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// The room, its row locked until the transaction ends.
async fn lock_room(c: &mut PgConnection, id: RoomId) -> StoreResult<Room> {
    let sql = concat!(
        "SELECT ",
        room_columns!(),
        " FROM rooms r WHERE r.id = $1 FOR UPDATE"
    );
    sqlx::query(sql)
        .bind(id.0)
        .fetch_optional(c)
        .await
        .map_err(map_err)?
        .map(|row| codec::room(&row))
        .transpose()?
        .ok_or(StoreError::NotFound(Entity::Room))
}

async fn fetch_member(
    c: &mut PgConnection,
    room: RoomId,
    user: UserId,
) -> StoreResult<Option<Member>> {
    let sql = concat!(
        "SELECT ",
        member_columns!(),
        " FROM members m WHERE m.room_id = $1 AND m.user_id = $2"
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

/// Every member of a room in joining order.
async fn all_members(c: &mut PgConnection, room: RoomId) -> StoreResult<Vec<Member>> {
    let sql = concat!(
        "SELECT ",
        member_columns!(),
        " FROM members m WHERE m.room_id = $1 ORDER BY m.joined_at, m.user_id"
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

async fn set_member_role(
    c: &mut PgConnection,
    room: RoomId,
    user: UserId,
    role: Role,
) -> StoreResult<Option<Member>> {
    let sql = concat!(
        "UPDATE members m SET role = $1 WHERE m.room_id = $2 AND m.user_id = $3 RETURNING ",
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
        .transpose()
}

async fn set_owner(c: &mut PgConnection, room: RoomId, owner: UserId) -> StoreResult<()> {
    sqlx::query("UPDATE rooms SET owner = $1 WHERE id = $2")
        .bind(owner.0)
        .bind(room.0)
        .execute(c)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// The pair key of a direct conversation: the smaller id first.
fn ordered(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b { (a, b) } else { (b, a) }
}

/// Whether the room's counters are `seen`, locking its row for the rest of the transaction
/// (appends, edits and membership changes lock it first too). Errors: `NotFound(Room)`.
pub(crate) async fn counters_are(
    c: &mut PgConnection,
    room: RoomId,
    seen: RoomCounters,
) -> StoreResult<bool> {
    let stored: Option<(i64, i64, i64)> = sqlx::query_as(
        "SELECT last_seq, last_change, member_count FROM rooms WHERE id = $1 FOR UPDATE",
    )
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

impl PostgresStore {
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
             WHERE (NOT $4 OR (r.kind = 'group' AND r.visibility = 'public')) \
               AND ($1::uuid IS NULL OR r.id > $1) \
               AND ($2::text IS NULL OR strpos(r.search, $2) > 0) \
             ORDER BY r.id LIMIT $3"
        );
        sqlx::query(sql)
            .bind(after.map(|id| id.0))
            .bind(search)
            .bind(i64::from(limit))
            .bind(public_only)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::room)
            .collect()
    }
}

#[async_trait]
impl RoomStore for PostgresStore {
    async fn create_room(&self, room: &Room, owner: &Member) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_room(&mut tx, room, 1).await?;
        let owner = Member {
            last_read_seq: 0,
            ..owner.clone()
        };
        insert_member(&mut tx, &owner).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn room(&self, id: RoomId) -> StoreResult<Option<Room>> {
        let sql = concat!("SELECT ", room_columns!(), " FROM rooms r WHERE r.id = $1");
        self.row_where(sql, id.0, codec::room).await
    }

    async fn room_by_alias(&self, alias: &str) -> StoreResult<Option<Room>> {
        let sql = concat!(
            "SELECT ",
            room_columns!(),
            " FROM rooms r WHERE r.alias = $1"
        );
        self.row_where(sql, alias, codec::room).await
    }

    async fn update_room(&self, room: &Room) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE rooms SET name = $1, topic = $2, alias = $3, visibility = $4, \
             capacity = $5, password_hash = $6, updated_at = $7, search = $8 WHERE id = $9",
        )
        .bind(&room.name)
        .bind(&room.topic)
        .bind(&room.alias)
        .bind(room.visibility.as_str())
        .bind(room.capacity.map(i64::from))
        .bind(&room.password_hash)
        .bind(room.updated_at)
        .bind(room_search_text(room))
        .bind(room.id.0)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Room));
        }
        Ok(())
    }

    async fn delete_room(&self, id: RoomId) -> StoreResult<()> {
        // Members, messages and the direct pair go with it (ON DELETE CASCADE).
        if self
            .execute_with("DELETE FROM rooms WHERE id = $1", id.0)
            .await?
            == 0
        {
            return Err(StoreError::NotFound(Entity::Room));
        }
        Ok(())
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
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        if !counters_are(&mut tx, room, seen.counters).await? {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE rooms SET last_seq = $2, last_change = $3, member_count = $4 WHERE id = $1",
        )
        .bind(room.0)
        .bind(int(fixed.last_seq))
        .bind(int(fixed.last_change))
        .bind(i64::from(fixed.member_count))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "UPDATE members SET last_read_seq = $2 WHERE room_id = $1 AND last_read_seq > $2",
        )
        .bind(room.0)
        .bind(int(fixed.last_seq))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
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
             WHERE m.user_id = $1 AND ($2::uuid IS NULL OR m.room_id > $2) \
               AND ($3::text IS NULL OR strpos(r.search, $3) > 0) \
             ORDER BY m.room_id LIMIT $4"
        );
        sqlx::query(sql)
            .bind(user.0)
            .bind(query.after.map(|id| id.0))
            .bind(query.search.as_deref().map(fold))
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
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
        let (a, b) = ordered(members[0].user_id, members[1].user_id);
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_room(&mut tx, room, 2).await?;
        // The pair's key decides: an engine creating the same pair at the same time waits
        // here for the first to commit, then inserts nothing and reads the first one's room.
        let claimed: Option<uuid::Uuid> = sqlx::query_scalar(
            "INSERT INTO direct_pairs (user_a, user_b, room_id) VALUES ($1, $2, $3) \
             ON CONFLICT (user_a, user_b) DO NOTHING RETURNING room_id",
        )
        .bind(a.0)
        .bind(b.0)
        .bind(room.id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        if claimed.is_none() {
            tx.rollback().await.map_err(map_err)?;
            let existing = self
                .direct_room(a, b)
                .await?
                .ok_or(StoreError::NotFound(Entity::Room))?;
            return Ok((existing, false));
        }
        for member in members {
            let member = Member {
                last_read_seq: 0,
                ..member.clone()
            };
            insert_member(&mut tx, &member).await?;
        }
        tx.commit().await.map_err(map_err)?;
        let room = Room {
            member_count: 2,
            last_seq: 0,
            last_change: 0,
            ..room.clone()
        };
        Ok((room, true))
    }

    async fn direct_room(&self, a: UserId, b: UserId) -> StoreResult<Option<Room>> {
        let (a, b) = ordered(a, b);
        let sql = concat!(
            "SELECT ",
            room_columns!(),
            " FROM direct_pairs d JOIN rooms r ON r.id = d.room_id \
             WHERE d.user_a = $1 AND d.user_b = $2"
        );
        sqlx::query(sql)
            .bind(a.0)
            .bind(b.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .map(|row| codec::room(&row))
            .transpose()
    }
}

#[async_trait]
impl MemberStore for PostgresStore {
    async fn add_member(&self, member: &Member) -> StoreResult<Member> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let room = lock_room(&mut tx, member.room_id).await?;
        if fetch_member(&mut tx, member.room_id, member.user_id)
            .await?
            .is_some()
        {
            return Err(StoreError::Conflict(Conflict::AlreadyMember));
        }
        if room
            .capacity
            .is_some_and(|capacity| room.member_count >= capacity)
        {
            return Err(StoreError::Conflict(Conflict::RoomFull));
        }
        let member = Member {
            last_read_seq: room.last_seq,
            ..member.clone()
        };
        insert_member(&mut tx, &member).await?;
        sqlx::query("UPDATE rooms SET member_count = member_count + 1 WHERE id = $1")
            .bind(member.room_id.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(member)
    }

    async fn remove_member(&self, room: RoomId, user: UserId) -> StoreResult<Departure> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // No room, no member: what leaving a deleted room finds.
        let stored = lock_room(&mut tx, room)
            .await
            .map_err(|error| match error {
                StoreError::NotFound(Entity::Room) => StoreError::NotFound(Entity::Member),
                other => other,
            })?;
        let done = sqlx::query("DELETE FROM members WHERE room_id = $1 AND user_id = $2")
            .bind(room.0)
            .bind(user.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(Entity::Member));
        }
        let departure = if stored.member_count <= 1 {
            // Its messages go with it (ON DELETE CASCADE).
            sqlx::query("DELETE FROM rooms WHERE id = $1")
                .bind(room.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            Departure::RoomDeleted
        } else {
            sqlx::query("UPDATE rooms SET member_count = member_count - 1 WHERE id = $1")
                .bind(room.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            if stored.owner == Some(user) {
                let members = all_members(&mut tx, room).await?;
                let next = successor(&members, user).ok_or(StoreError::NotFound(Entity::Member))?;
                let next = set_member_role(&mut tx, room, next.user_id, Role::Owner)
                    .await?
                    .ok_or(StoreError::NotFound(Entity::Member))?;
                set_owner(&mut tx, room, next.user_id).await?;
                Departure::Left {
                    new_owner: Some(next),
                }
            } else {
                Departure::Left { new_owner: None }
            }
        };
        tx.commit().await.map_err(map_err)?;
        Ok(departure)
    }

    async fn member(&self, room: RoomId, user: UserId) -> StoreResult<Option<Member>> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
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
            " FROM rooms r LEFT JOIN members m ON m.room_id = r.id AND m.user_id = $1 \
             WHERE r.id = $2"
        );
        let Some(row) = sqlx::query(sql)
            .bind(user.0)
            .bind(room.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
        else {
            return Ok(None);
        };
        let is_member = codec::get::<Option<String>>(&row, "role")?.is_some();
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
            " FROM members m WHERE m.room_id = $1 \
               AND ($2::timestamptz IS NULL OR (m.joined_at, m.user_id) > ($2, $3)) \
             ORDER BY m.joined_at, m.user_id LIMIT $4"
        );
        let after = query.after.as_ref();
        sqlx::query(sql)
            .bind(room.0)
            .bind(after.map(|cursor| cursor.joined_at))
            .bind(after.map(|cursor| cursor.user_id.0))
            .bind(i64::from(query.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(codec::member)
            .collect()
    }

    async fn set_role(&self, room: RoomId, user: UserId, role: Role) -> StoreResult<Member> {
        let mut c = self.pool.acquire().await.map_err(map_err)?;
        set_member_role(&mut c, room, user, role)
            .await?
            .ok_or(StoreError::NotFound(Entity::Member))
    }

    async fn transfer_ownership(&self, room: RoomId, to: UserId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let owner = lock_room(&mut tx, room).await?.owner;
        if fetch_member(&mut tx, room, to).await?.is_none() {
            return Err(StoreError::NotFound(Entity::Member));
        }
        if let Some(owner) = owner {
            set_member_role(&mut tx, room, owner, Role::Admin).await?;
        }
        set_member_role(&mut tx, room, to, Role::Owner).await?;
        set_owner(&mut tx, room, to).await?;
        tx.commit().await.map_err(map_err)
    }
}

#[async_trait]
impl ReadMarkerStore for PostgresStore {
    async fn advance_read_marker(&self, room: RoomId, user: UserId, seq: u64) -> StoreResult<u64> {
        let marker: Option<i64> = sqlx::query_scalar(
            "UPDATE members SET last_read_seq = GREATEST(last_read_seq, $1) \
             WHERE room_id = $2 AND user_id = $3 RETURNING last_read_seq",
        )
        .bind(int(seq))
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        let marker = marker.ok_or(StoreError::NotFound(Entity::Member))?;
        codec::uint(marker)
    }

    async fn unread_counts(
        &self,
        user: UserId,
        room: Option<RoomId>,
    ) -> StoreResult<Vec<UnreadCounts>> {
        sqlx::query(crate::threads::UNREAD_COUNTS)
            .bind(user.0)
            .bind(room.map(|room| room.0))
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?
            .iter()
            .map(crate::threads::unread_counts)
            .collect()
    }
}
