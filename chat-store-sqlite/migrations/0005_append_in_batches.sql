-- Appends now also arrive several to one INSERT (see `messages::append_all`): a room's counters
-- keep the highest of its new messages whatever order the rows are inserted in.
DROP TRIGGER messages_appended;
CREATE TRIGGER messages_appended AFTER INSERT ON messages
BEGIN
    UPDATE rooms SET last_seq = max(last_seq, NEW.seq), last_change = max(last_change, NEW.change_id)
        WHERE id = NEW.room_id;
    UPDATE members SET last_read_seq = max(last_read_seq, NEW.seq)
        WHERE room_id = NEW.room_id AND user_id = NEW.sender;
END;
