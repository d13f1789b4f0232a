-- Message search. Every live message's search terms (chat_core::search::terms, computed by the
-- store in Rust, the same for every store) go into a contentless FTS5 index, keyed by a row of
-- `search_rows` that says which message it is: FTS5 needs integer row ids, and messages are
-- keyed by (room, seq). Row ids grow as messages are stored, so the index reads newest first.
CREATE TABLE search_rows (
    row_id  INTEGER PRIMARY KEY,
    room_id BLOB NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    UNIQUE (room_id, seq)
);
CREATE VIRTUAL TABLE search_terms USING fts5 (
    terms, content = '', contentless_delete = 1, detail = none, tokenize = 'ascii'
);

-- The append hands the terms over in `new_terms`, which is indexed in the same statement and
-- then cleared: the index is their only copy.
ALTER TABLE messages ADD COLUMN new_terms TEXT;
CREATE TRIGGER messages_indexed AFTER INSERT ON messages WHEN NEW.new_terms IS NOT NULL
BEGIN
    INSERT INTO search_rows (room_id, seq) VALUES (NEW.room_id, NEW.seq);
    INSERT INTO search_terms (rowid, terms) VALUES (last_insert_rowid(), NEW.new_terms);
    UPDATE messages SET new_terms = NULL WHERE room_id = NEW.room_id AND seq = NEW.seq;
END;

-- A room's rows go with it (by its foreign key), and so do their index entries.
CREATE TRIGGER search_rows_gone AFTER DELETE ON search_rows
BEGIN
    DELETE FROM search_terms WHERE rowid = OLD.row_id;
END;
