-- Searched text folded by chat-core's `store::fold` (Unicode lowercase): SQLite's lower() folds
-- ASCII only, so "élan" did not find "Élan". Written with every row; rows written before this
-- migration are filled in by the store when it opens (see `open::fold_old_rows`).
ALTER TABLE rooms ADD COLUMN search TEXT;
ALTER TABLE users ADD COLUMN search TEXT;
CREATE INDEX rooms_unfolded ON rooms (id) WHERE search IS NULL;
CREATE INDEX users_unfolded ON users (id) WHERE search IS NULL;
