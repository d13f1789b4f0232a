-- The chat schema. Several engines share it: what must be ordered is ordered by row locks
-- (a room's row orders its appends, joins and departures), never by one process's memory.

CREATE TABLE chat_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO chat_meta (key, value) VALUES ('application', 'chat-engine');

CREATE TABLE users (
    id             UUID PRIMARY KEY,
    username       TEXT NOT NULL CONSTRAINT users_username_key UNIQUE,
    email          TEXT CONSTRAINT users_email_key UNIQUE,
    display_name   TEXT NOT NULL,
    profile        TEXT NOT NULL,
    presence       TEXT NOT NULL,
    status_message TEXT,
    is_admin       BOOLEAN NOT NULL,
    password_hash  TEXT,
    created_at     TIMESTAMPTZ NOT NULL,
    updated_at     TIMESTAMPTZ NOT NULL,
    -- Username and display name folded by chat-core's `store::fold`, one per line.
    search         TEXT NOT NULL
);

-- Tokens are kept only as SHA-256 hashes. kind: 0 access, 1 refresh, 2 live-feed ticket.
CREATE TABLE tokens (
    hash       BYTEA PRIMARY KEY,
    kind       SMALLINT NOT NULL,
    session_id UUID NOT NULL,
    user_id    UUID NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    rotated    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX tokens_by_session ON tokens (session_id);
CREATE INDEX tokens_by_user ON tokens (user_id);
CREATE INDEX tokens_by_expiry ON tokens (expires_at);

CREATE TABLE rooms (
    id            UUID PRIMARY KEY,
    kind          TEXT NOT NULL,
    name          TEXT NOT NULL,
    topic         TEXT,
    alias         TEXT CONSTRAINT rooms_alias_key UNIQUE,
    visibility    TEXT NOT NULL,
    capacity      BIGINT,
    password_hash TEXT,
    owner         UUID,
    member_count  BIGINT NOT NULL,
    last_seq      BIGINT NOT NULL,
    last_change   BIGINT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    -- Name, topic and alias folded, one per line.
    search        TEXT NOT NULL
);
CREATE INDEX rooms_public ON rooms (id) WHERE kind = 'group' AND visibility = 'public';

-- One direct conversation per unordered pair: user_a < user_b.
CREATE TABLE direct_pairs (
    user_a  UUID NOT NULL,
    user_b  UUID NOT NULL,
    room_id UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    PRIMARY KEY (user_a, user_b)
);
CREATE INDEX direct_pairs_by_room ON direct_pairs (room_id);

-- Memberships carry the read marker, so an unread count is one row and no scan.
CREATE TABLE members (
    room_id       UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       UUID NOT NULL,
    role          TEXT NOT NULL,
    joined_at     TIMESTAMPTZ NOT NULL,
    last_read_seq BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id, room_id);
CREATE INDEX members_by_join ON members (room_id, joined_at, user_id);

-- Keyed by (room, seq): history pages are range scans of the primary key. Metadata is kept as
-- the text the sender's JSON became, so it reads back exactly.
CREATE TABLE messages (
    room_id    UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    id         UUID NOT NULL CONSTRAINT messages_id_key UNIQUE,
    sender     UUID NOT NULL,
    body       TEXT NOT NULL,
    reply_to   UUID,
    txn_id     TEXT,
    metadata   TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    edited_at  TIMESTAMPTZ,
    deleted_at TIMESTAMPTZ,
    change_id  BIGINT NOT NULL,
    PRIMARY KEY (room_id, seq)
);
CREATE UNIQUE INDEX messages_by_txn ON messages (sender, txn_id) WHERE txn_id IS NOT NULL;
CREATE INDEX messages_by_change ON messages (room_id, change_id);

-- Attempt counters in fixed windows (the failed-login lockout).
CREATE TABLE attempts (
    key        TEXT PRIMARY KEY,
    count      BIGINT NOT NULL,
    window_end TIMESTAMPTZ NOT NULL
);
CREATE INDEX attempts_by_end ON attempts (window_end);

-- Live connections, for `online`: each engine (node) renews its own until it stops.
CREATE TABLE connections (
    id         UUID PRIMARY KEY,
    node       UUID NOT NULL,
    user_id    UUID NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX connections_by_user ON connections (user_id, expires_at);
CREATE INDEX connections_by_node ON connections (node);
