-- Message search, off the send path. Migration 9's sends still carried their terms (split in
-- Rust, passed through a view and its trigger, kept in `search_waiting`). Now a send writes
-- only its message and its row of `search_rows`; the writer indexes the messages past
-- `search_progress.indexed` from their bodies, every 1024 search rows (`search::index_new`),
-- and search splits the few bodies not yet indexed itself.
DROP TRIGGER message_appended;
DROP VIEW message_appends;
DROP TRIGGER search_rows_moved;
DROP TRIGGER messages_leave_the_index;

INSERT INTO search_index (rowid, terms) SELECT search_row, terms FROM search_waiting;
DROP TABLE search_waiting;

-- Every search row up to `indexed` is in the index (or has no terms); those after it are
-- not. New search rows are numbered after both it and the highest row (rows freed by
-- deleting a room are never given again below it).
CREATE TABLE search_progress (
    id      INTEGER PRIMARY KEY CHECK (id = 0),
    indexed INTEGER NOT NULL
);
INSERT INTO search_progress (id, indexed)
    SELECT 0, coalesce(max(search_row), 0) FROM search_rows;

-- The append trigger of migration 5, which now also gives a numbered message its search row
-- (one trigger program for both: each costs the send path).
DROP TRIGGER messages_appended;
CREATE TRIGGER messages_appended AFTER INSERT ON messages
BEGIN
    UPDATE rooms SET last_seq = max(last_seq, NEW.seq), last_change = max(last_change, NEW.change_id)
        WHERE id = NEW.room_id;
    UPDATE members SET last_read_seq = max(last_read_seq, NEW.seq)
        WHERE room_id = NEW.room_id AND user_id = NEW.sender;
    INSERT INTO search_rows (search_row, room_id, seq)
        SELECT NEW.search_row, NEW.room_id, NEW.seq WHERE NEW.search_row IS NOT NULL;
END;

-- A message deleted with its room leaves the index with it.
CREATE TRIGGER messages_leave_the_index AFTER DELETE ON messages
BEGIN
    DELETE FROM search_rows WHERE search_row = OLD.search_row;
    DELETE FROM search_index WHERE rowid = OLD.search_row;
END;
