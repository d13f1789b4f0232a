-- Pages of a room's members in joining order are range reads.
CREATE INDEX members_by_join ON members (room_id, joined_at, user_id);
