-- Message search: each live message's search terms (chat_core::search::terms, computed by the
-- store in Rust, the same for every store) as a tsvector of those exact lexemes (no dictionary:
-- the terms are already folded), under a GIN index that answers prefix queries. Text without
-- spaces is indexed as pairs of characters by the terms themselves, where a trigram index would
-- otherwise be needed. A tombstone has none (NULL).
ALTER TABLE messages ADD COLUMN search_terms TSVECTOR;
CREATE INDEX messages_search ON messages USING gin (search_terms);
-- Messages written before this migration, which the store indexes when it opens.
CREATE INDEX messages_unindexed ON messages (room_id, seq)
    WHERE search_terms IS NULL AND deleted_at IS NULL;
