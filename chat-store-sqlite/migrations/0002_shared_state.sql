-- What several engines on one database share besides the chat itself. Live-feed tickets are
-- tokens of kind 2 in `tokens` (single-use, bound to their login's session_id).

-- Attempt counters in fixed windows (the failed-login lockout): count attempts until
-- window_end (microseconds).
CREATE TABLE attempts (
    key        TEXT PRIMARY KEY,
    count      INTEGER NOT NULL,
    window_end INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX attempts_by_end ON attempts (window_end);

-- Live connections, for `online`: each engine (node) renews its own until it stops.
CREATE TABLE connections (
    id         BLOB PRIMARY KEY,
    node       BLOB NOT NULL,
    user_id    BLOB NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX connections_by_user ON connections (user_id, expires_at);
CREATE INDEX connections_by_node ON connections (node);
