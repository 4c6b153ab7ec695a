-- The rollups' durable "rolled up to" marker: the highest call id whose facts are in
-- usage_hourly and usage_daily. The writer commits calls and answers their callers first, then
-- folds every call above the marker into the rollups and moves the marker, in one transaction;
-- whatever a crash left above it is folded in at the next open, so nothing is lost or counted
-- twice.
CREATE TABLE rollup_marker (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    call_id INTEGER NOT NULL
) STRICT;

-- Until now every call was rolled up in its own transaction: all of them are in.
INSERT INTO rollup_marker (id, call_id) SELECT 1, coalesce(max(id), 0) FROM calls;

-- `calls` has no AUTOINCREMENT, so deleting the highest ids lets SQLite hand them out again:
-- the marker never stays above the highest remaining id, or a reused id would be skipped.
-- (Whoever deletes calls also rebuilds the rollups they were counted in.)
CREATE TRIGGER calls_deleted_lower_rollup_marker AFTER DELETE ON calls
WHEN OLD.id > coalesce((SELECT max(id) FROM calls), 0)
BEGIN
    UPDATE rollup_marker SET call_id = min(call_id, coalesce((SELECT max(id) FROM calls), 0))
    WHERE id = 1;
END;
