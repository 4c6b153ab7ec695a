-- Mirrors migrations/0016_run_owner.sql: who is running a run now, and until when its lease
-- holds (renewed while it runs).
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until_ms BIGINT;
