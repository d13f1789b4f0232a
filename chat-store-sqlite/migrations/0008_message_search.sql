-- Message search. Every live message keeps its search terms (chat_core::search::terms, computed
-- by the store in Rust, the same for every store) in `terms`, and an FTS5 index over them uses
-- `messages` as its external content, keyed by the message's `search_row`: FTS5 needs integer
-- row ids, and messages are keyed by (room, seq). Search rows grow as messages are stored, so
-- the index reads newest first. The triggers keep the index in step with `terms`, in the same
-- transaction as the message.
ALTER TABLE messages ADD COLUMN search_row INTEGER;
ALTER TABLE messages ADD COLUMN terms TEXT;
CREATE UNIQUE INDEX messages_by_search_row ON messages (search_row);
-- Messages written before this migration, which the store indexes when it opens.
CREATE INDEX messages_unindexed ON messages (id) WHERE search_row IS NULL;
CREATE VIRTUAL TABLE search_terms USING fts5 (
    terms, content = 'messages', content_rowid = 'search_row', columnsize = 0, detail = none,
    tokenize = 'ascii'
);

CREATE TRIGGER messages_indexed AFTER INSERT ON messages WHEN NEW.terms IS NOT NULL
BEGIN
    INSERT INTO search_terms (rowid, terms) VALUES (NEW.search_row, NEW.terms);
END;

-- An edit, a deletion or the first indexing of an old message: out with the old terms (as they
-- were indexed), in with the new.
CREATE TRIGGER messages_reindexed AFTER UPDATE OF terms ON messages
BEGIN
    INSERT INTO search_terms (search_terms, rowid, terms)
        SELECT 'delete', OLD.search_row, OLD.terms WHERE OLD.terms IS NOT NULL;
    INSERT INTO search_terms (rowid, terms)
        SELECT NEW.search_row, NEW.terms WHERE NEW.terms IS NOT NULL;
END;

-- A message deleted with its room leaves the index with it.
CREATE TRIGGER messages_leave_the_index AFTER DELETE ON messages WHEN OLD.terms IS NOT NULL
BEGIN
    INSERT INTO search_terms (search_terms, rowid, terms) VALUES ('delete', OLD.search_row, OLD.terms);
END;
