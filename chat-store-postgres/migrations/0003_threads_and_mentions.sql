-- Threads and mentions. A reply names its root (`thread_root`) and has a place in its thread
-- (`thread_no`); a root keeps its thread's summary, counted as each reply is stored (under its
-- room's row lock, like the sequence number), so reading it costs nothing.
ALTER TABLE messages
    ADD COLUMN thread_root UUID,
    ADD COLUMN thread_no BIGINT,
    ADD COLUMN mentions UUID[],
    ADD COLUMN mentions_room BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN thread_count BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN thread_last_seq BIGINT,
    ADD COLUMN thread_last_at TIMESTAMPTZ,
    ADD COLUMN thread_participants UUID[];
CREATE INDEX messages_by_thread ON messages (room_id, thread_root, seq)
    WHERE thread_root IS NOT NULL;
CREATE INDEX threads_by_activity ON messages (room_id, thread_last_seq)
    WHERE thread_last_seq IS NOT NULL;

-- One row per member a message mentions (by name or as the room): unread mentions are the
-- rows after the member's read marker, a range of the primary key.
CREATE TABLE mentions (
    user_id    UUID NOT NULL,
    room_id    UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    message_id UUID NOT NULL,
    PRIMARY KEY (user_id, room_id, seq)
);
CREATE INDEX mentions_by_message ON mentions (user_id, message_id);
CREATE INDEX mentions_by_seq ON mentions (room_id, seq);

-- A member's place in a thread: replies read (by their place), and whether it follows it.
CREATE TABLE thread_markers (
    room_id   UUID NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    root_seq  BIGINT NOT NULL,
    user_id   UUID NOT NULL,
    read      BIGINT NOT NULL,
    following BOOLEAN NOT NULL,
    PRIMARY KEY (room_id, root_seq, user_id)
);
CREATE INDEX thread_markers_by_user ON thread_markers (user_id, room_id);

-- In the append's transaction: what the message's mentions count (each kept name, or every
-- member, never the sender); for a reply, its count on the root, its place in the thread, and
-- the thread followed by the sender (who has read up to it), the root's sender and those
-- mentioned in the root or the reply, the members among them.
CREATE FUNCTION message_appended_extras() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    root messages%ROWTYPE;
BEGIN
    IF NEW.mentions_room THEN
        INSERT INTO mentions (user_id, room_id, seq, message_id)
        SELECT user_id, NEW.room_id, NEW.seq, NEW.id FROM members
        WHERE room_id = NEW.room_id AND user_id <> NEW.sender;
    ELSIF NEW.mentions IS NOT NULL THEN
        -- The append kept members only.
        INSERT INTO mentions (user_id, room_id, seq, message_id)
        SELECT u, NEW.room_id, NEW.seq, NEW.id FROM unnest(NEW.mentions) AS u
        WHERE u <> NEW.sender;
    END IF;
    IF NEW.thread_root IS NOT NULL THEN
        UPDATE messages SET
            thread_count = thread_count + 1,
            thread_last_seq = NEW.seq,
            thread_last_at = NEW.created_at,
            thread_participants = CASE
                WHEN cardinality(coalesce(thread_participants, '{}')) < 10
                 AND NOT (NEW.sender = ANY (coalesce(thread_participants, '{}')))
                THEN array_append(coalesce(thread_participants, '{}'), NEW.sender)
                ELSE thread_participants END
        WHERE id = NEW.thread_root
        RETURNING * INTO root;
        UPDATE messages SET thread_no = root.thread_count
        WHERE room_id = NEW.room_id AND seq = NEW.seq;
        INSERT INTO thread_markers (room_id, root_seq, user_id, read, following)
        SELECT NEW.room_id, root.seq, f.u,
               CASE WHEN f.u = NEW.sender THEN root.thread_count ELSE 0 END, true
        FROM (SELECT NEW.sender
              UNION SELECT root.sender
              UNION SELECT unnest(coalesce(root.mentions, '{}'))
              UNION SELECT unnest(coalesce(NEW.mentions, '{}'))) AS f (u)
        WHERE EXISTS (SELECT 1 FROM members WHERE room_id = NEW.room_id AND user_id = f.u)
        ON CONFLICT (room_id, root_seq, user_id) DO UPDATE
            SET following = true, read = GREATEST(thread_markers.read, excluded.read);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_appended_extras AFTER INSERT ON messages FOR EACH ROW
    WHEN (NEW.thread_root IS NOT NULL OR NEW.mentions IS NOT NULL OR NEW.mentions_room)
    EXECUTE FUNCTION message_appended_extras();

-- Leaving a room takes the member's mentions and thread markers in it.
CREATE FUNCTION member_left() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM mentions WHERE user_id = OLD.user_id AND room_id = OLD.room_id;
    DELETE FROM thread_markers WHERE room_id = OLD.room_id AND user_id = OLD.user_id;
    RETURN NULL;
END $$;
CREATE TRIGGER members_left AFTER DELETE ON members FOR EACH ROW EXECUTE FUNCTION member_left();
