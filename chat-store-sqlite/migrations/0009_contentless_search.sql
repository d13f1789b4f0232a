-- Message search, cheaper per send. Migration 8's index cost each send a write to FTS5 (which
-- writes a segment, its structure record and an `%_idx` row at every commit that changed it),
-- a `terms` column in the message's row (a second copy, which FTS5 read to delete) and an
-- entry in the `search_row` index. Now:
--
-- * The terms of the newest messages wait in `search_waiting` until they go into the index:
--   every 1024th search row moves the waiting terms there together, in the same statement,
--   one segment per 1024 messages. Search reads the waiting terms besides the index.
-- * The index keeps no content and deletes by row (FTS5's contentless-delete form, SQLite
--   3.43 or later), so `messages` loses its `terms` column, and the index on `search_row`:
--   `search_rows` says which message each search row is (its rows are narrower than the
--   index's entries, and its table is written in order).
--
-- Edits and deletions reach the index at once (`messages::index`).
DROP TRIGGER messages_indexed;
DROP TRIGGER messages_reindexed;
DROP TRIGGER messages_leave_the_index;

CREATE VIRTUAL TABLE search_index USING fts5 (
    terms, content = '', contentless_delete = 1, detail = none, tokenize = 'ascii'
);
INSERT INTO search_index (rowid, terms)
    SELECT search_row, terms FROM messages WHERE terms IS NOT NULL;
DROP TABLE search_terms;

-- Every message with a search row has one here.
CREATE TABLE search_rows (
    search_row INTEGER PRIMARY KEY,
    room_id    BLOB NOT NULL,
    seq        INTEGER NOT NULL
);
-- Terms not yet in the index. Search rows are numbered without gaps (see
-- `messages::APPEND_ALL`), so 1024 appends reach a multiple of 1024, which empties this table
-- (numbers freed by deleting a room with the newest messages are given again, a delay).
CREATE TABLE search_waiting (
    search_row INTEGER PRIMARY KEY,
    terms      TEXT NOT NULL
);
INSERT INTO search_rows (search_row, room_id, seq)
    SELECT search_row, room_id, seq FROM messages WHERE search_row IS NOT NULL;
DROP INDEX messages_by_search_row;
ALTER TABLE messages DROP COLUMN terms;

-- Every column an append or an import sets, and the message's terms (`NULL` for none). A
-- view has no defaults: its trigger gives `mentions_room` the table's.
CREATE VIEW message_appends AS
    SELECT room_id, seq, id, sender, body, reply_to, txn_id, metadata, created_at, edited_at,
           deleted_at, change_id, thread_root, mentions, mentions_room, search_row,
           NULL AS terms
    FROM messages;

CREATE TRIGGER message_appended INSTEAD OF INSERT ON message_appends
BEGIN
    INSERT INTO messages (room_id, seq, id, sender, body, reply_to, txn_id, metadata,
                          created_at, edited_at, deleted_at, change_id, thread_root, mentions,
                          mentions_room, search_row)
        VALUES (NEW.room_id, NEW.seq, NEW.id, NEW.sender, NEW.body, NEW.reply_to, NEW.txn_id,
                NEW.metadata, NEW.created_at, NEW.edited_at, NEW.deleted_at, NEW.change_id,
                NEW.thread_root, NEW.mentions, coalesce(NEW.mentions_room, 0),
                NEW.search_row);
    INSERT INTO search_rows (search_row, room_id, seq)
        VALUES (NEW.search_row, NEW.room_id, NEW.seq);
    INSERT INTO search_waiting (search_row, terms)
        SELECT NEW.search_row, NEW.terms WHERE NEW.terms IS NOT NULL;
END;

-- Every 1024th search row, the waiting terms go into the index together.
CREATE TRIGGER search_rows_moved AFTER INSERT ON search_rows WHEN NEW.search_row % 1024 = 0
BEGIN
    INSERT INTO search_index (rowid, terms) SELECT search_row, terms FROM search_waiting;
    DELETE FROM search_waiting;
END;

-- A message deleted with its room leaves the index with it.
CREATE TRIGGER messages_leave_the_index AFTER DELETE ON messages
BEGIN
    DELETE FROM search_rows WHERE search_row = OLD.search_row;
    DELETE FROM search_waiting WHERE search_row = OLD.search_row;
    DELETE FROM search_index WHERE rowid = OLD.search_row;
END;
