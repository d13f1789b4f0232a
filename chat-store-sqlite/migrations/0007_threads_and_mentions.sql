-- Threads and mentions. A reply names its root (`thread_root`) and has a place in its thread
-- (`thread_no`); a root keeps its thread's summary, counted as each reply is stored, so reading
-- it costs nothing. `mentions` and `thread_participants` are JSON arrays of hex user ids.
ALTER TABLE messages ADD COLUMN thread_root BLOB;
ALTER TABLE messages ADD COLUMN thread_no INTEGER;
ALTER TABLE messages ADD COLUMN mentions TEXT;
ALTER TABLE messages ADD COLUMN mentions_room INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN thread_last_seq INTEGER;
ALTER TABLE messages ADD COLUMN thread_last_at INTEGER;
ALTER TABLE messages ADD COLUMN thread_participants TEXT;
CREATE INDEX messages_by_thread ON messages (room_id, thread_root, seq)
    WHERE thread_root IS NOT NULL;
CREATE INDEX threads_by_activity ON messages (room_id, thread_last_seq)
    WHERE thread_last_seq IS NOT NULL;

-- One row per member a message mentions (by name or as the room): unread mentions are the
-- rows after the member's read marker, a range of the primary key.
CREATE TABLE mentions (
    user_id    BLOB NOT NULL,
    room_id    BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        INTEGER NOT NULL,
    message_id BLOB NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
) WITHOUT ROWID;
CREATE INDEX mentions_by_message ON mentions (user_id, message_id);
CREATE INDEX mentions_by_seq ON mentions (room_id, seq);

-- A member's place in a thread: replies read (by their place), and whether it follows it.
CREATE TABLE thread_markers (
    room_id   BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    root_seq  INTEGER NOT NULL,
    user_id   BLOB NOT NULL,
    read      INTEGER NOT NULL,
    following INTEGER NOT NULL,
    PRIMARY KEY (room_id, root_seq, user_id)
) WITHOUT ROWID;
CREATE INDEX thread_markers_by_user ON thread_markers (user_id, room_id);

-- What a message's mentions count: each kept name (the append kept members only, so no
-- member is read here), or every member; never the sender.
CREATE TRIGGER messages_mentioning AFTER INSERT ON messages
    WHEN NEW.mentions IS NOT NULL AND NOT NEW.mentions_room
BEGIN
    INSERT INTO mentions (user_id, room_id, seq, message_id)
    SELECT unhex(value), NEW.room_id, NEW.seq, NEW.id FROM json_each(NEW.mentions)
    WHERE unhex(value) != NEW.sender;
END;
CREATE TRIGGER messages_mentioning_the_room AFTER INSERT ON messages WHEN NEW.mentions_room
BEGIN
    INSERT INTO mentions (user_id, room_id, seq, message_id)
    SELECT user_id, NEW.room_id, NEW.seq, NEW.id FROM members
    WHERE room_id = NEW.room_id AND user_id != NEW.sender;
END;

-- A reply, in the same statement as its insert: counted on its root, numbered in its thread,
-- and its thread followed by the sender (who has read up to it), the root's sender and those
-- mentioned in the root or the reply, the members among them.
CREATE TRIGGER messages_threaded AFTER INSERT ON messages WHEN NEW.thread_root IS NOT NULL
BEGIN
    UPDATE messages SET
        thread_count = thread_count + 1,
        thread_last_seq = NEW.seq,
        thread_last_at = NEW.created_at,
        thread_participants = CASE
            WHEN json_array_length(coalesce(thread_participants, '[]')) < 10
             AND NOT EXISTS (SELECT 1 FROM json_each(thread_participants)
                             WHERE unhex(value) = NEW.sender)
            THEN json_insert(coalesce(thread_participants, '[]'), '$[#]', hex(NEW.sender))
            ELSE thread_participants END
    WHERE id = NEW.thread_root;
    UPDATE messages SET thread_no = (SELECT thread_count FROM messages WHERE id = NEW.thread_root)
    WHERE room_id = NEW.room_id AND seq = NEW.seq;
    INSERT INTO thread_markers (room_id, root_seq, user_id, read, following)
    SELECT NEW.room_id, root.seq, follower.user_id,
           CASE WHEN follower.user_id = NEW.sender THEN root.thread_count ELSE 0 END, 1
    FROM messages AS root,
         (SELECT NEW.sender AS user_id
          UNION SELECT sender FROM messages WHERE id = NEW.thread_root
          UNION SELECT unhex(value) FROM json_each(
                    (SELECT mentions FROM messages WHERE id = NEW.thread_root))
          UNION SELECT unhex(value) FROM json_each(NEW.mentions)) AS follower
    WHERE root.id = NEW.thread_root
      AND EXISTS (SELECT 1 FROM members
                  WHERE room_id = NEW.room_id AND user_id = follower.user_id)
    ON CONFLICT (room_id, root_seq, user_id)
        DO UPDATE SET following = 1, read = max(read, excluded.read);
END;

-- Leaving a room takes the member's mentions and thread markers in it.
CREATE TRIGGER members_left AFTER DELETE ON members
BEGIN
    DELETE FROM mentions WHERE user_id = OLD.user_id AND room_id = OLD.room_id;
    DELETE FROM thread_markers WHERE room_id = OLD.room_id AND user_id = OLD.user_id;
END;
