//! Rooms, direct conversations and membership.

use crate::error::Field;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{RoomId, UserId};

/// A group room or a direct conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Room {
    /// The room's id.
    pub id: RoomId,
    /// Group room or direct conversation.
    pub kind: RoomKind,
    /// The room's name (empty for direct conversations).
    pub name: String,
    /// What the room is about.
    pub topic: Option<String>,
    /// A unique, lowercase short name used in join links.
    pub alias: Option<String>,
    /// Who may find and join the room.
    pub visibility: Visibility,
    /// The most members the room may have.
    pub capacity: Option<u32>,
    /// The Argon2id hash of the join password. Never serialized.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// The owner (none for direct conversations).
    pub owner: Option<UserId>,
    /// How many members the room has now.
    pub member_count: u32,
    /// The sequence number of the room's newest message (0 when it has none).
    pub last_seq: u64,
    /// The cursor of the room's newest change (message created, edited or deleted).
    pub last_change: u64,
    /// When the room was created.
    pub created_at: DateTime<Utc>,
    /// When the room's fields were last edited.
    pub updated_at: DateTime<Utc>,
}

impl Room {
    /// Whether joining needs a password.
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }

    /// Whether this is a two-person direct conversation.
    pub fn is_direct(&self) -> bool {
        self.kind == RoomKind::Direct
    }

    /// Whether anyone may post here without joining first: public group rooms without password.
    pub fn is_open(&self) -> bool {
        self.kind == RoomKind::Group
            && self.visibility == Visibility::Public
            && self.password_hash.is_none()
    }
}

/// Group room or direct conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// A named room with an owner and any number of members.
    Group,
    /// Exactly two members, created on first use, unique per pair.
    Direct,
}

impl RoomKind {
    /// The snake_case name, as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Group => "group",
            Self::Direct => "direct",
        }
    }

    /// Parses [`RoomKind::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "group" => Some(Self::Group),
            "direct" => Some(Self::Direct),
            _ => None,
        }
    }
}

/// Who may find and join a room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Listed; anyone may join (with the password, if it has one).
    #[default]
    Public,
    /// Unlisted; only members see it, and one joins only by being added.
    Private,
}

impl Visibility {
    /// The snake_case name, as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
        }
    }

    /// Parses [`Visibility::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "public" => Some(Self::Public),
            "private" => Some(Self::Private),
            _ => None,
        }
    }
}

/// A member's role in a room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Any member: reads, posts, leaves.
    Member,
    /// Also adds and removes members and edits the room.
    Admin,
    /// Also deletes the room and grants roles. One per group room.
    Owner,
}

impl Role {
    /// The snake_case name, as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
            Self::Owner => "owner",
        }
    }

    /// Parses [`Role::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Self::Member),
            "admin" => Some(Self::Admin),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    /// Owners and admins manage members and edit the room.
    pub fn can_manage(self) -> bool {
        self >= Self::Admin
    }
}

/// A user's membership in a room, with the user's read marker there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The room.
    pub room_id: RoomId,
    /// The member.
    pub user_id: UserId,
    /// Owner, admin or member.
    pub role: Role,
    /// When the user joined or was added.
    pub joined_at: DateTime<Utc>,
    /// The sequence number of the last message this member has read.
    pub last_read_seq: u64,
}

/// Where a page of a room's members ends (members are listed by `joined_at`, then user id).
/// Written as `MICROS.UUID`; clients pass it back as they got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberCursor {
    /// The last listed member's `joined_at`.
    pub joined_at: DateTime<Utc>,
    /// The last listed member.
    pub user_id: UserId,
}

impl MemberCursor {
    /// The cursor just after `member`.
    pub fn of(member: &Member) -> Self {
        Self {
            joined_at: member.joined_at,
            user_id: member.user_id,
        }
    }

    /// Whether `member` comes after the cursor.
    pub fn precedes(&self, member: &Member) -> bool {
        *self < Self::of(member)
    }
}

impl std::fmt::Display for MemberCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.joined_at.timestamp_micros(), self.user_id)
    }
}

impl std::str::FromStr for MemberCursor {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || crate::Error::invalid(Field::Cursor, "not a member cursor");
        let (micros, user) = s.split_once('.').ok_or_else(invalid)?;
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        Ok(Self {
            joined_at: DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?,
            user_id: user.parse().map_err(|_| invalid())?,
        })
    }
}

/// What it takes to create a group room.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewRoom {
    /// 1–100 characters.
    pub name: String,
    /// What the room is about.
    pub topic: Option<String>,
    /// A unique short name for join links: 3–64 of `[a-z0-9_.-]`.
    pub alias: Option<String>,
    /// Public (default) or private.
    pub visibility: Visibility,
    /// The most members the room may have, owner included.
    pub capacity: Option<u32>,
    /// A password that joining requires.
    pub password: Option<String>,
    /// Users added as members at once.
    pub members: Vec<UserId>,
}

impl NewRoom {
    /// A public room with just a name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// A change to a group room; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomUpdate {
    /// A new name.
    pub name: Option<String>,
    /// A new topic.
    pub topic: Option<Option<String>>,
    /// A new alias.
    pub alias: Option<Option<String>>,
    /// A new visibility.
    pub visibility: Option<Visibility>,
    /// A new capacity (not below the current member count).
    pub capacity: Option<Option<u32>>,
    /// A new join password.
    pub password: Option<Option<String>>,
}

/// A room together with one user's membership in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    /// The room.
    pub room: Room,
    /// The user's membership, role and read marker.
    pub member: Member,
}
