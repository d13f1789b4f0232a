//! Group rooms, direct conversations and membership.

use super::Chat;
use crate::error::Field;
use crate::error::{Conflict, Denied, Entity, Error, Result};
use crate::events::Event;
use crate::ids::{RoomId, UserId};
use crate::page::Page;
use crate::room::{
    Member, MemberCursor, Membership, NewRoom, Role, Room, RoomKind, RoomUpdate, Visibility,
};
use crate::store::{Departure, MemberQuery, RoomQuery};
use crate::validate;

const MAX_NAME: usize = 100;
const MAX_TOPIC: usize = 500;

impl Chat {
    /// Creates a group room owned by the actor, with the listed users as members.
    ///
    /// Errors: `Invalid` (name, topic, alias, capacity, password); `NotFound(User)` for an
    /// unknown member; `Conflict(AliasTaken)`; `Conflict(RoomFull)` when the members exceed the
    /// capacity; `RateLimited` when the listed members exceed what is left of the actor's
    /// [`ChatConfig::member_adds_allowed`](crate::ChatConfig::member_adds_allowed) (the room is
    /// then not created).
    pub async fn create_room(&self, actor: UserId, new: NewRoom) -> Result<Room> {
        self.actor(actor).await?;
        let name = validate::line(Field::Name, &new.name, 1, MAX_NAME)?;
        let topic = validate::optional_line(Field::Topic, new.topic.as_deref(), MAX_TOPIC)?;
        let alias = new.alias.as_deref().map(validate::alias).transpose()?;
        let capacity = new.capacity.map(|c| self.capacity(c)).transpose()?;
        let password_hash = self.room_password_hash(new.password.as_deref()).await?;
        let mut members: Vec<UserId> = new.members.into_iter().filter(|m| *m != actor).collect();
        members.sort();
        members.dedup();
        if capacity.is_some_and(|capacity| members.len() + 1 > capacity as usize) {
            return Err(Error::Conflict(Conflict::RoomFull));
        }
        for member in &members {
            self.user_exists(*member).await?;
        }
        for _ in &members {
            self.count_member_add(actor).await?;
        }
        let now = self.now();
        let room = Room {
            id: RoomId(self.ids.next_id()),
            kind: RoomKind::Group,
            name,
            topic,
            alias,
            visibility: new.visibility,
            capacity,
            password_hash,
            owner: Some(actor),
            member_count: 1,
            last_seq: 0,
            last_change: 0,
            created_at: now,
            updated_at: now,
        };
        let owner = self.new_member(room.id, actor, Role::Owner);
        self.store.create_room(&room, &owner).await?;
        self.publish(Event::MemberJoined { member: owner });
        for user in members {
            let member = self
                .store
                .add_member(&self.new_member(room.id, user, Role::Member))
                .await?;
            self.publish(Event::MemberJoined { member });
        }
        self.room_by_id(room.id).await
    }

    fn capacity(&self, capacity: u32) -> Result<u32> {
        if (1..=self.config.max_room_capacity).contains(&capacity) {
            Ok(capacity)
        } else {
            Err(Error::invalid(
                Field::Capacity,
                format!("must be 1 to {}", self.config.max_room_capacity),
            ))
        }
    }

    async fn room_password_hash(&self, password: Option<&str>) -> Result<Option<String>> {
        match password {
            Some(password) => {
                if password.is_empty() || password.len() > 1024 {
                    return Err(Error::invalid(Field::Password, "must be 1 to 1024 bytes"));
                }
                Ok(Some(self.hasher.hash(password).await?))
            }
            None => Ok(None),
        }
    }

    fn new_member(&self, room_id: RoomId, user_id: UserId, role: Role) -> Member {
        Member {
            room_id,
            user_id,
            role,
            joined_at: self.now(),
            last_read_seq: 0,
        }
    }

    /// A room's details: for its members, or anyone when it is public.
    pub async fn room(&self, actor: UserId, room_id: RoomId) -> Result<Room> {
        self.visible_room(actor, room_id).await
    }

    /// The public room with this alias (the join link), or a room of the actor's with it.
    pub async fn room_by_alias(&self, actor: UserId, alias: &str) -> Result<Room> {
        let alias = validate::alias(alias)?;
        let room = self
            .store
            .room_by_alias(&alias)
            .await?
            .ok_or(Error::NotFound(Entity::Room))?;
        self.visible_room(actor, room.id).await
    }

    /// Public rooms, ordered by id (creation), whose name, topic or alias contains `search`.
    pub async fn public_rooms(
        &self,
        actor: UserId,
        search: Option<&str>,
        after: Option<RoomId>,
        limit: Option<u32>,
    ) -> Result<Page<Room, RoomId>> {
        self.actor(actor).await?;
        let (query, limit) = self.room_query(search, after, limit)?;
        let rooms = self.store.list_public_rooms(&query).await?;
        Ok(Page::cut(rooms, limit, |room| room.id))
    }

    /// The rooms and direct conversations a user belongs to, ordered by room id, after the
    /// cursor `after`, whose name, topic or alias contains `search`: oneself, or anyone for an
    /// admin.
    pub async fn rooms_of(
        &self,
        actor: UserId,
        user: UserId,
        search: Option<&str>,
        after: Option<RoomId>,
        limit: Option<u32>,
    ) -> Result<Page<Membership, RoomId>> {
        let me = self.actor(actor).await?;
        if me.id != user && !me.is_admin {
            return Err(Error::Forbidden(Denied::NotAdmin));
        }
        self.user_exists(user).await?;
        let (query, limit) = self.room_query(search, after, limit)?;
        let rooms = self.store.rooms_of_user(user, &query).await?;
        let rooms = Page::cut(rooms, limit, |(room, _)| room.id);
        Ok(rooms.map(|(room, member)| Membership { room, member }))
    }

    /// The page size, and a store query for one room more, which tells whether another page
    /// follows.
    fn room_query(
        &self,
        search: Option<&str>,
        after: Option<RoomId>,
        limit: Option<u32>,
    ) -> Result<(RoomQuery, u32)> {
        let limit = self.page_limit(limit)?;
        let query = RoomQuery {
            search: validate::optional_line(Field::Search, search, 100)?,
            after,
            limit: limit + 1,
        };
        Ok((query, limit))
    }

    /// Edits a group room: its owner or admins.
    ///
    /// Errors: `Forbidden`; `Invalid` (fields, or a capacity below the member count);
    /// `Conflict(AliasTaken)`.
    pub async fn update_room(
        &self,
        actor: UserId,
        room_id: RoomId,
        update: RoomUpdate,
    ) -> Result<Room> {
        let (mut room, me) = self.membership(actor, room_id).await?;
        if room.is_direct() {
            return Err(Error::Forbidden(Denied::DirectConversation));
        }
        if !me.role.can_manage() {
            return Err(Error::Forbidden(Denied::NotManager));
        }
        if let Some(name) = &update.name {
            room.name = validate::line(Field::Name, name, 1, MAX_NAME)?;
        }
        if let Some(topic) = &update.topic {
            room.topic = validate::optional_line(Field::Topic, topic.as_deref(), MAX_TOPIC)?;
        }
        if let Some(alias) = &update.alias {
            room.alias = alias.as_deref().map(validate::alias).transpose()?;
        }
        if let Some(visibility) = update.visibility {
            room.visibility = visibility;
        }
        if let Some(capacity) = update.capacity {
            room.capacity = capacity.map(|c| self.capacity(c)).transpose()?;
            if room.capacity.is_some_and(|c| c < room.member_count) {
                return Err(Error::invalid(
                    Field::Capacity,
                    "must not be below the number of members",
                ));
            }
        }
        if let Some(password) = &update.password {
            room.password_hash = self.room_password_hash(password.as_deref()).await?;
        }
        room.updated_at = self.now();
        self.store.update_room(&room).await?;
        let room = self.room_by_id(room_id).await?;
        self.publish(Event::RoomUpdated { room: room.clone() });
        Ok(room)
    }

    /// Deletes a group room with its messages: its owner only.
    pub async fn delete_room(&self, actor: UserId, room_id: RoomId) -> Result<()> {
        let (room, me) = self.membership(actor, room_id).await?;
        if room.is_direct() || me.role != Role::Owner {
            return Err(Error::Forbidden(Denied::NotOwner));
        }
        self.store.delete_room(room_id).await?;
        self.publish(Event::RoomDeleted { room_id });
        Ok(())
    }

    /// Joins a public group room, with its password if it has one. Private rooms are joined only
    /// by being added.
    ///
    /// Wrong passwords count like failed logins, per user and room: after
    /// [`ChatConfig::failed_logins_allowed`](crate::ChatConfig::failed_logins_allowed) of them
    /// within the window, attempts are refused with `RateLimited` without being checked.
    ///
    /// Errors: `Forbidden` (private, direct, missing or wrong password);
    /// `Conflict(AlreadyMember | RoomFull)`; `RateLimited`.
    pub async fn join_room(
        &self,
        actor: UserId,
        room_id: RoomId,
        password: Option<&str>,
    ) -> Result<Member> {
        self.actor(actor).await?;
        let room = self.room_by_id(room_id).await?;
        if room.is_direct() {
            return Err(Error::Forbidden(Denied::DirectConversation));
        }
        if room.visibility == Visibility::Private {
            return Err(Error::Forbidden(Denied::PrivateRoom));
        }
        if let Some(hash) = &room.password_hash {
            let Some(password) = password else {
                return Err(Error::Forbidden(Denied::PasswordRequired));
            };
            let key = format!("room-password:{room_id}:{actor}");
            self.count_attempt(&key).await?;
            if !self.hasher.verify(password, Some(hash.clone())).await? {
                return Err(Error::Forbidden(Denied::WrongRoomPassword));
            }
            self.clear_attempts(&key).await?;
        }
        self.admit(room_id, actor, Role::Member).await
    }

    /// Joins the public room with this alias (the join link).
    pub async fn join_by_alias(
        &self,
        actor: UserId,
        alias: &str,
        password: Option<&str>,
    ) -> Result<Member> {
        let room = self.room_by_alias(actor, alias).await?;
        self.join_room(actor, room.id, password).await
    }

    /// Adds a member (capacity checked atomically) and announces it.
    pub(super) async fn admit(&self, room_id: RoomId, user: UserId, role: Role) -> Result<Member> {
        let member = self
            .store
            .add_member(&self.new_member(room_id, user, role))
            .await?;
        self.publish(Event::MemberJoined {
            member: member.clone(),
        });
        Ok(member)
    }

    /// Leaves a group room. When the owner leaves, the longest-standing admin (or else member)
    /// becomes owner; when the owner was the last member, the room is deleted.
    pub async fn leave_room(&self, actor: UserId, room_id: RoomId) -> Result<()> {
        let room = self.room_by_id(room_id).await?;
        if room.is_direct() {
            return Err(Error::Forbidden(Denied::DirectConversation));
        }
        self.depart(room_id, actor, None).await
    }

    /// Removes `user` from a group room, handing on ownership when the owner goes and deleting
    /// the room when no one is left (one store operation: see
    /// [`MemberStore::remove_member`](crate::store::MemberStore::remove_member)).
    pub(super) async fn depart(
        &self,
        room_id: RoomId,
        user: UserId,
        removed_by: Option<UserId>,
    ) -> Result<()> {
        match self.store.remove_member(room_id, user).await? {
            Departure::RoomDeleted => self.publish(Event::RoomDeleted { room_id }),
            Departure::Left { new_owner } => {
                if let Some(member) = new_owner {
                    self.publish(Event::MemberUpdated { member });
                }
                self.publish(Event::MemberLeft {
                    room_id,
                    user_id: user,
                    removed_by,
                });
            }
        }
        Ok(())
    }

    /// Adds a user to a group room (public or private, password or not): the owner or an
    /// admin; only the owner adds admins.
    ///
    /// Errors: `Forbidden`; `Invalid` (role owner); `NotFound(User)`;
    /// `Conflict(AlreadyMember | RoomFull)`; `RateLimited` past the actor's
    /// [`ChatConfig::member_adds_allowed`](crate::ChatConfig::member_adds_allowed).
    pub async fn add_member(
        &self,
        actor: UserId,
        room_id: RoomId,
        user: UserId,
        role: Role,
    ) -> Result<Member> {
        let (room, me) = self.membership(actor, room_id).await?;
        Self::check_manage(&room, &me, role)?;
        self.user_exists(user).await?;
        self.count_member_add(actor).await?;
        self.admit(room_id, user, role).await
    }

    /// Makes `user` a member with `role`: adds them ([`Chat::add_member`]) or, when they are a
    /// member already, changes their role ([`Chat::set_role`]). Returns the member and whether
    /// they were added.
    pub async fn put_member(
        &self,
        actor: UserId,
        room_id: RoomId,
        user: UserId,
        role: Role,
    ) -> Result<(Member, bool)> {
        // A role change spends nothing of the actor's member-add budget.
        if self.store.member(room_id, user).await?.is_some() {
            return Ok((self.set_role(actor, room_id, user, role).await?, false));
        }
        match self.add_member(actor, room_id, user, role).await {
            Ok(member) => Ok((member, true)),
            Err(Error::Conflict(Conflict::AlreadyMember)) => {
                Ok((self.set_role(actor, room_id, user, role).await?, false))
            }
            Err(error) => Err(error),
        }
    }

    /// Spends one of the actor's
    /// [`ChatConfig::member_adds_allowed`](crate::ChatConfig::member_adds_allowed).
    async fn count_member_add(&self, actor: UserId) -> Result<()> {
        let config = &self.config;
        let key = format!("member-add:{actor}");
        self.spend(&key, config.member_adds_allowed, config.member_add_window)
            .await
    }

    fn check_manage(room: &Room, me: &Member, role: Role) -> Result<()> {
        if room.is_direct() {
            return Err(Error::Forbidden(Denied::DirectConversation));
        }
        if !me.role.can_manage() {
            return Err(Error::Forbidden(Denied::NotManager));
        }
        if role == Role::Owner {
            return Err(Error::invalid(
                Field::Role,
                "a room has one owner; transfer ownership instead",
            ));
        }
        if role == Role::Admin && me.role != Role::Owner {
            return Err(Error::Forbidden(Denied::NotOwner));
        }
        Ok(())
    }

    /// Removes a member: the owner removes anyone; admins remove plain members. Removing
    /// oneself is leaving.
    pub async fn remove_member(&self, actor: UserId, room_id: RoomId, user: UserId) -> Result<()> {
        if actor == user {
            return self.leave_room(actor, room_id).await;
        }
        let (room, me) = self.membership(actor, room_id).await?;
        let target = self
            .store
            .member(room_id, user)
            .await?
            .ok_or(Error::NotFound(Entity::Member))?;
        if target.role == Role::Owner {
            return Err(Error::Forbidden(Denied::OwnerStays));
        }
        Self::check_manage(&room, &me, target.role)?;
        self.depart(room_id, user, Some(actor)).await
    }

    /// Changes a member's role: the owner only. Giving the owner role hands ownership over (the
    /// old owner becomes an admin).
    pub async fn set_role(
        &self,
        actor: UserId,
        room_id: RoomId,
        user: UserId,
        role: Role,
    ) -> Result<Member> {
        let (room, me) = self.membership(actor, room_id).await?;
        if room.is_direct() || me.role != Role::Owner {
            return Err(Error::Forbidden(Denied::NotOwner));
        }
        if user == actor {
            return Err(Error::Forbidden(Denied::OwnerStays));
        }
        self.store
            .member(room_id, user)
            .await?
            .ok_or(Error::NotFound(Entity::Member))?;
        if role == Role::Owner {
            self.store.transfer_ownership(room_id, user).await?;
            if let Some(old) = self.store.member(room_id, actor).await? {
                self.publish(Event::MemberUpdated { member: old });
            }
        } else {
            self.store.set_role(room_id, user, role).await?;
        }
        let member = self
            .store
            .member(room_id, user)
            .await?
            .ok_or(Error::NotFound(Entity::Member))?;
        self.publish(Event::MemberUpdated {
            member: member.clone(),
        });
        Ok(member)
    }

    /// The members of a room with their roles, in joining order, after the cursor `after`
    /// ([`MemberCursor::of`] the last member of the page before): for members, or anyone when
    /// it is public.
    pub async fn members(
        &self,
        actor: UserId,
        room_id: RoomId,
        after: Option<MemberCursor>,
        limit: Option<u32>,
    ) -> Result<Page<Member, MemberCursor>> {
        self.visible_room(actor, room_id).await?;
        let limit = self.page_limit(limit)?;
        let query = MemberQuery {
            after,
            limit: limit + 1,
        };
        let members = self.store.members(room_id, &query).await?;
        Ok(Page::cut(members, limit, MemberCursor::of))
    }

    /// One member of a room: for members, or anyone when it is public.
    pub async fn member(&self, actor: UserId, room_id: RoomId, user: UserId) -> Result<Member> {
        self.visible_room(actor, room_id).await?;
        self.store
            .member(room_id, user)
            .await?
            .ok_or(Error::NotFound(Entity::Member))
    }

    /// The direct conversation between the actor and `other`, created on first use. Unique per
    /// pair, even when both sides start it at once.
    pub async fn direct_room(&self, actor: UserId, other: UserId) -> Result<Room> {
        if actor == other {
            return Err(Error::invalid(
                Field::User,
                "a direct conversation needs another user",
            ));
        }
        self.actor(actor).await?;
        if let Some(room) = self.store.direct_room(actor, other).await? {
            return Ok(room);
        }
        self.user_exists(other).await?;
        let now = self.now();
        let room = Room {
            id: RoomId(self.ids.next_id()),
            kind: RoomKind::Direct,
            name: String::new(),
            topic: None,
            alias: None,
            visibility: Visibility::Private,
            capacity: Some(2),
            password_hash: None,
            owner: None,
            member_count: 2,
            last_seq: 0,
            last_change: 0,
            created_at: now,
            updated_at: now,
        };
        let members = [
            self.new_member(room.id, actor, Role::Member),
            self.new_member(room.id, other, Role::Member),
        ];
        let (room, created) = self
            .store
            .find_or_create_direct(&room, [&members[0], &members[1]])
            .await?;
        if created {
            for member in members {
                self.publish(Event::MemberJoined { member });
            }
        }
        Ok(room)
    }

    /// Tells the room's members that the actor started or stopped typing.
    pub async fn typing(&self, actor: UserId, room_id: RoomId, typing: bool) -> Result<()> {
        self.membership(actor, room_id).await?;
        self.publish(Event::Typing {
            room_id,
            user_id: actor,
            typing,
        });
        Ok(())
    }
}
