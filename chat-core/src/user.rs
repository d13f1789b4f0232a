//! Users: accounts, profiles and status.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::UserId;

/// A user of the chat.
///
/// A user may have no password: a host application that owns identity creates its users with
/// [`Chat::create_user`](crate::Chat::create_user) and passes their ids to every call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// Unique, lowercase, 3–32 of `[a-z0-9_.-]`.
    pub username: String,
    /// Unique (lowercased) email address, if given.
    pub email: Option<String>,
    /// The name shown to others; the username when none was given.
    pub display_name: String,
    /// Free profile fields.
    pub profile: Profile,
    /// Online, away, busy or offline.
    pub status: Status,
    /// A short status text ("in a meeting").
    pub status_message: Option<String>,
    /// Admins list, edit and delete any user.
    pub is_admin: bool,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
    /// When the user was last changed.
    pub updated_at: DateTime<Utc>,
}

impl User {
    /// What everyone may see of this user.
    pub fn directory_entry(&self) -> DirectoryEntry {
        DirectoryEntry {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            status: self.status,
            status_message: self.status_message.clone(),
        }
    }
}

/// Free profile fields; every one is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// Given name.
    pub first_name: Option<String>,
    /// Family name.
    pub last_name: Option<String>,
    /// Phone number, as the user wrote it.
    pub phone: Option<String>,
    /// Postal address, as the user wrote it.
    pub address: Option<String>,
    /// A few words about the user.
    pub bio: Option<String>,
}

/// Whether a user is around.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Active now.
    Online,
    /// Idle.
    Away,
    /// Around but not to be disturbed.
    Busy,
    /// Not connected.
    #[default]
    Offline,
}

impl Status {
    /// The snake_case name, as stored and serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Away => "away",
            Self::Busy => "busy",
            Self::Offline => "offline",
        }
    }

    /// Parses [`Status::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "online" => Self::Online,
            "away" => Self::Away,
            "busy" => Self::Busy,
            "offline" => Self::Offline,
            _ => return None,
        })
    }
}

/// A user as the actor may see it: the whole record (oneself, or anyone for an admin), or the
/// public face (anyone else). From [`Chat::user_view`](crate::Chat::user_view).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserView {
    /// Every field.
    Full(User),
    /// What anyone may see.
    Public(DirectoryEntry),
}

/// The public face of a user, which anyone may look up to start a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryEntry {
    /// The user's id.
    pub id: UserId,
    /// The username.
    pub username: String,
    /// The name shown to others.
    pub display_name: String,
    /// Online, away, busy or offline.
    pub status: Status,
    /// A short status text.
    pub status_message: Option<String>,
}

/// What it takes to create a user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewUser {
    /// 3–32 of `[a-z0-9_.-]`; upper case is folded to lower case.
    pub username: String,
    /// An optional, unique email address.
    pub email: Option<String>,
    /// The name shown to others; defaults to the username.
    pub display_name: Option<String>,
    /// Free profile fields.
    pub profile: Profile,
}

impl NewUser {
    /// A user with just a username.
    pub fn named(username: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            ..Self::default()
        }
    }
}

/// A change to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct UserUpdate {
    /// A new display name.
    pub display_name: Option<String>,
    /// A new email address, or `Some(None)` to remove it.
    pub email: Option<Option<String>>,
    /// New profile fields (replacing all of them).
    pub profile: Option<Profile>,
    /// A new status.
    pub status: Option<Status>,
    /// A new status message, or `Some(None)` to clear it.
    pub status_message: Option<Option<String>>,
    /// Grant or take admin rights (admins only, and not on oneself).
    pub is_admin: Option<bool>,
    /// A new password, given the current one (the user only); every login of the user ends.
    pub password: Option<PasswordChange>,
}

/// A change of one's own password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordChange {
    /// The password now.
    pub current: String,
    /// The password from now on.
    pub new: String,
}

impl PasswordChange {
    /// A change from `current` to `new`.
    pub fn new(current: impl Into<String>, new: impl Into<String>) -> Self {
        Self {
            current: current.into(),
            new: new.into(),
        }
    }
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordChange { .. }")
    }
}
