//! The errors of the chat engine: one domain [`Error`] for callers, one [`StoreError`] for stores.

use std::time::Duration;

/// A boxed error from a storage backend, kept as the source of [`StoreError::Backend`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why an operation conflicts with the current state. Shared by [`Error`] and [`StoreError`], so a
/// store's refusal reaches the caller unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Conflict {
    /// Another user has this username (compared case-insensitively).
    UsernameTaken,
    /// Another user has this email address.
    EmailTaken,
    /// Another room has this alias.
    AliasTaken,
    /// The room is at its capacity.
    RoomFull,
    /// The user is already a member of the room.
    AlreadyMember,
    /// The client transaction id was already used by this sender for a different message.
    TxnIdReused,
    /// The message already carries as many different reaction keys as it may.
    TooManyReactions,
}

impl Conflict {
    /// A stable snake_case code, as used in HTTP error bodies.
    pub fn code(self) -> &'static str {
        match self {
            Self::UsernameTaken => "username_taken",
            Self::EmailTaken => "email_taken",
            Self::AliasTaken => "alias_taken",
            Self::RoomFull => "room_full",
            Self::AlreadyMember => "already_member",
            Self::TxnIdReused => "txn_id_reused",
            Self::TooManyReactions => "too_many_reactions",
        }
    }
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::UsernameTaken => "username is taken",
            Self::EmailTaken => "email is taken",
            Self::AliasTaken => "room alias is taken",
            Self::RoomFull => "room is full",
            Self::AlreadyMember => "already a member of the room",
            Self::TxnIdReused => "transaction id was already used for another message",
            Self::TooManyReactions => "the message has as many different reactions as it may",
        })
    }
}

/// What kind of thing was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Entity {
    /// A user.
    User,
    /// A room or direct conversation.
    Room,
    /// A membership of a user in a room.
    Member,
    /// A message.
    Message,
    /// A thread: its root is no message of the room that may start one.
    Thread,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::User => "user",
            Self::Room => "room",
            Self::Member => "member",
            Self::Message => "message",
            Self::Thread => "thread",
        })
    }
}

/// The error every storage trait method returns.
///
/// Backends map their own failures onto the meaningful variants (a unique-key violation becomes
/// [`StoreError::Conflict`], a missing row [`StoreError::NotFound`]) and keep everything else as
/// the source of [`StoreError::Backend`]. The conformance suite asserts on these variants.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record the operation needs does not exist.
    #[error("{0} not found")]
    NotFound(Entity),
    /// The write would break a uniqueness or capacity rule.
    #[error("{0}")]
    Conflict(Conflict),
    /// The backend cannot be reached now (connection refused or lost, no pooled connection
    /// free in time, the database shutting down): the same call may succeed later.
    #[error("storage backend unavailable")]
    Unavailable(#[source] BoxError),
    /// Any other failure of the backend.
    #[error("storage backend failed")]
    Backend(#[source] BoxError),
}

impl StoreError {
    /// Wraps any backend error.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        Self::Backend(error.into())
    }
}

/// Why a store could not be opened: the errors of opening, which no store method returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The location names no store of this kind.
    #[error(transparent)]
    BadLocation(#[from] crate::store::BadLocation),
    /// What is there is not something this code can read (another application's data, a
    /// newer format); it was left untouched.
    #[error("incompatible store: {0}")]
    Incompatible(String),
    /// Any other failure while opening.
    #[error("opening the store failed: {0}")]
    Backend(#[source] BoxError),
}

impl OpenError {
    /// Wraps any backend error.
    pub fn backend(error: impl Into<BoxError>) -> Self {
        Self::Backend(error.into())
    }
}

impl From<StoreError> for OpenError {
    fn from(error: StoreError) -> Self {
        Self::Backend(error.into())
    }
}

/// Why [`Error::Forbidden`] refused an operation: what a caller can match on (the text is for
/// people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    /// The actor is not a member of the room.
    #[error("not a member of this room")]
    NotMember,
    /// Only the room's owner and admins do this (edit the room, manage members).
    #[error("only the room's owner and admins do this")]
    NotManager,
    /// Only the room's owner does this (delete the room, change roles, manage admins).
    #[error("only the room's owner does this")]
    NotOwner,
    /// Only the sender edits a message.
    #[error("only the sender edits a message")]
    NotSender,
    /// Only the sender, or the room's owner and admins, delete a message.
    #[error("only the sender or the room's owner and admins delete a message")]
    NotSenderOrManager,
    /// The owner cannot be removed, nor change its own role: it hands ownership over first.
    #[error("the owner hands ownership over first")]
    OwnerStays,
    /// Direct conversations are not joined, left, edited or managed: they have exactly two
    /// members.
    #[error("direct conversations have exactly two members")]
    DirectConversation,
    /// Private rooms are joined only by being added.
    #[error("private rooms are joined by being added")]
    PrivateRoom,
    /// The room has a password and none was given.
    #[error("the room needs a password")]
    PasswordRequired,
    /// The room password given is wrong.
    #[error("wrong room password")]
    WrongRoomPassword,
    /// The current password given to change a password is wrong.
    #[error("current password is wrong")]
    WrongCurrentPassword,
    /// Only the user itself changes its password.
    #[error("only the user changes their password")]
    NotOwnPassword,
    /// Only site admins do this to other users (see their accounts or rooms, list, edit or
    /// delete them).
    #[error("only admins do this to other users")]
    NotAdmin,
    /// Admin rights are granted and taken by another admin only.
    #[error("only another admin changes admin rights")]
    OwnAdminRights,
    /// Live-feed tickets are for logins made with a password, not a host's own authentication.
    #[error("tickets are for logins made with a password")]
    NotALogin,
}

/// The input an [`Error::Invalid`] is about. Its [`name`](Field::name) is the field's name
/// in requests (`profile.bio` for a nested one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// A username.
    Username,
    /// An email address.
    Email,
    /// A password: too short or too long.
    Password,
    /// A user's display name.
    DisplayName,
    /// A user's status message.
    StatusMessage,
    /// A profile's first name.
    ProfileFirstName,
    /// A profile's last name.
    ProfileLastName,
    /// A profile's phone number.
    ProfilePhone,
    /// A profile's address.
    ProfileAddress,
    /// A profile's bio.
    ProfileBio,
    /// A room's name.
    Name,
    /// A room's topic.
    Topic,
    /// A room's alias.
    Alias,
    /// A room's capacity, or a change below its member count.
    Capacity,
    /// A role that cannot be given this way.
    Role,
    /// The other user of a direct conversation (not oneself).
    User,
    /// A message body.
    Body,
    /// A transaction id.
    TxnId,
    /// A message's metadata.
    Metadata,
    /// The message replied to: none in this room.
    ReplyTo,
    /// A reaction's key.
    ReactionKey,
    /// The root of a thread: no message of the room that may start one.
    ThreadRoot,
    /// A message's mentions: too many.
    Mentions,
    /// A sequence number beyond the room's newest message.
    Seq,
    /// A page cursor that no list gave.
    Cursor,
    /// A page size out of range.
    Limit,
    /// Search text.
    Search,
    /// The password-hashing cost of a configuration.
    PasswordHashing,
}

impl Field {
    /// The field's name in requests.
    pub fn name(self) -> &'static str {
        match self {
            Self::Username => "username",
            Self::Email => "email",
            Self::Password => "password",
            Self::DisplayName => "display_name",
            Self::StatusMessage => "status_message",
            Self::ProfileFirstName => "profile.first_name",
            Self::ProfileLastName => "profile.last_name",
            Self::ProfilePhone => "profile.phone",
            Self::ProfileAddress => "profile.address",
            Self::ProfileBio => "profile.bio",
            Self::Name => "name",
            Self::Topic => "topic",
            Self::Alias => "alias",
            Self::Capacity => "capacity",
            Self::Role => "role",
            Self::User => "user",
            Self::Body => "body",
            Self::TxnId => "txn_id",
            Self::Metadata => "metadata",
            Self::ReplyTo => "reply_to",
            Self::ReactionKey => "key",
            Self::ThreadRoot => "thread_root",
            Self::Mentions => "mentions",
            Self::Seq => "seq",
            Self::Cursor => "cursor",
            Self::Limit => "limit",
            Self::Search => "q",
            Self::PasswordHashing => "password_hashing",
        }
    }
}

impl std::fmt::Display for Field {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The error of every [`Chat`](crate::Chat) operation. Each variant is something a caller can act
/// on; [`Error::code`] gives a stable code for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The thing does not exist, or the actor may not know that it exists.
    #[error("{0} not found")]
    NotFound(Entity),
    /// The actor is known but not allowed to do this, for this reason.
    #[error("forbidden: {0}")]
    Forbidden(Denied),
    /// The operation conflicts with the current state.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// An input field is invalid.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: Field,
        /// Why it is invalid, in words a user can read.
        reason: String,
    },
    /// Credentials or a token are missing, wrong, expired or revoked.
    #[error("unauthenticated")]
    Unauthenticated,
    /// Too many attempts; try again after the given time.
    #[error("rate limited, retry after {retry_after:?}")]
    RateLimited {
        /// How long to wait before trying again.
        retry_after: Duration,
    },
    /// The store failed; the source says why. Never shown to end users.
    #[error("storage failed")]
    Storage(#[source] StoreError),
    /// A fault of the engine itself (a misconfiguration or a crashed worker), never of the input.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl Error {
    pub(crate) fn invalid(field: Field, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// A stable snake_case code for the error, as used in HTTP error bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "not_found",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(conflict) => conflict.code(),
            Self::Invalid { .. } => "invalid",
            Self::Unauthenticated => "unauthenticated",
            Self::RateLimited { .. } => "rate_limited",
            Self::Storage(StoreError::Unavailable(_)) => "unavailable",
            Self::Storage(_) | Self::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for Error {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(entity) => Self::NotFound(entity),
            StoreError::Conflict(conflict) => Self::Conflict(conflict),
            other => Self::Storage(other),
        }
    }
}

/// The result of every [`Chat`](crate::Chat) operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;
