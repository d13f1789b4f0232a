-- Reactions, keyed by their message's position: a page's reactions are one range read of the
-- primary key, and deleting the room takes them with it.
CREATE TABLE reactions (
    room_id BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    key     TEXT NOT NULL,
    user_id BLOB NOT NULL,
    PRIMARY KEY (room_id, seq, key, user_id)
) WITHOUT ROWID;
