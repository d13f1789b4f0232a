-- The chat schema. Times are microseconds since the Unix epoch; ids are 16-byte UUID blobs.

-- Marks the file as a chat database (see `open`).
CREATE TABLE chat_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO chat_meta (key, value) VALUES ('application', 'chat-engine');

CREATE TABLE users (
    id             BLOB PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    email          TEXT UNIQUE,
    display_name   TEXT NOT NULL,
    profile        TEXT NOT NULL,
    presence       TEXT NOT NULL,
    status_message TEXT,
    is_admin       INTEGER NOT NULL,
    password_hash  TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);

-- Tokens are kept only as SHA-256 hashes. kind: 0 access, 1 refresh.
CREATE TABLE tokens (
    hash       BLOB PRIMARY KEY,
    kind       INTEGER NOT NULL,
    session_id BLOB NOT NULL,
    user_id    BLOB NOT NULL,
    expires_at INTEGER NOT NULL,
    rotated    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX tokens_by_session ON tokens (session_id);
CREATE INDEX tokens_by_user ON tokens (user_id);
CREATE INDEX tokens_by_expiry ON tokens (expires_at);

CREATE TABLE rooms (
    id            BLOB PRIMARY KEY,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    topic         TEXT,
    alias         TEXT UNIQUE,
    visibility    TEXT NOT NULL,
    capacity      INTEGER,
    password_hash TEXT,
    owner         BLOB,
    member_count  INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL,
    last_change   INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE INDEX rooms_public ON rooms (id) WHERE kind = 'group' AND visibility = 'public';

-- One direct conversation per unordered pair: user_a < user_b.
CREATE TABLE direct_pairs (
    user_a  BLOB NOT NULL,
    user_b  BLOB NOT NULL,
    room_id BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    PRIMARY KEY (user_a, user_b)
) WITHOUT ROWID;
CREATE INDEX direct_pairs_by_room ON direct_pairs (room_id);

-- Memberships carry the read marker, so an unread count is one row and no scan.
CREATE TABLE members (
    room_id       BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       BLOB NOT NULL,
    role          TEXT NOT NULL,
    joined_at     INTEGER NOT NULL,
    last_read_seq INTEGER NOT NULL,
    PRIMARY KEY (room_id, user_id)
) WITHOUT ROWID;
CREATE INDEX members_by_user ON members (user_id, room_id);

-- Keyed by (room, seq): history pages are range scans of the primary key.
CREATE TABLE messages (
    room_id    BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    id         BLOB NOT NULL UNIQUE,
    sender     BLOB NOT NULL,
    body       TEXT NOT NULL,
    reply_to   BLOB,
    txn_id     TEXT,
    metadata   TEXT,
    created_at INTEGER NOT NULL,
    edited_at  INTEGER,
    deleted_at INTEGER,
    change_id  INTEGER NOT NULL,
    PRIMARY KEY (room_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_by_txn ON messages (sender, txn_id) WHERE txn_id IS NOT NULL;
CREATE INDEX messages_by_change ON messages (room_id, change_id);

-- Appending is one INSERT ... SELECT that takes the room's next sequence number and change
-- cursor; this trigger, in the same statement, moves the room's counters and the sender's read
-- marker. One statement per append keeps the hot path to one round trip.
CREATE TRIGGER messages_appended AFTER INSERT ON messages
BEGIN
    UPDATE rooms SET last_seq = NEW.seq, last_change = NEW.change_id WHERE id = NEW.room_id;
    UPDATE members SET last_read_seq = max(last_read_seq, NEW.seq)
        WHERE room_id = NEW.room_id AND user_id = NEW.sender;
END;
