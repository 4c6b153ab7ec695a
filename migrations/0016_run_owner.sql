-- Who is running a run now: a lease its runner renews while it runs, so a second machine or
-- process resuming the same run is told who has it instead of sending its items too.
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN lease_until_ms INTEGER;
