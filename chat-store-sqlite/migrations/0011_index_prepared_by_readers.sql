-- The index's catch-up, read and split by a reader. The writer no longer reads the bodies of
-- the messages past the mark and splits their terms while every send waits behind it: a read
-- connection does that from its snapshot, and the writer only writes what it prepared
-- (`search::index_prepared`), provided nothing it read has changed since. `changed` says
-- whether it has: it counts the edits and deletions of messages past the mark, by this
-- process or any other sharing the file (those of indexed messages reach the index at once).
ALTER TABLE search_progress ADD COLUMN changed INTEGER NOT NULL DEFAULT 0;

-- Migration 10's trigger, which now also counts a message past the mark deleted with its room.
DROP TRIGGER messages_leave_the_index;
CREATE TRIGGER messages_leave_the_index AFTER DELETE ON messages
BEGIN
    DELETE FROM search_rows WHERE search_row = OLD.search_row;
    DELETE FROM search_index WHERE rowid = OLD.search_row;
    UPDATE search_progress SET changed = changed + 1 WHERE OLD.search_row > indexed;
END;
