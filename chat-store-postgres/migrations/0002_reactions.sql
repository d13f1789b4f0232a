-- Reactions, keyed by their message's position: a page's reactions are one range read of the
-- primary key, and deleting the room takes them with it. Keys compare bytewise.
CREATE TABLE reactions (
    room_id UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    key     TEXT COLLATE "C" NOT NULL,
    user_id UUID NOT NULL,
    PRIMARY KEY (room_id, seq, key, user_id)
);
