-- An alert episode is opened once, whichever process sees the condition first: at most one
-- open alert per key. Duplicates opened before this (two processes at once) are closed first.
UPDATE alerts SET resolved_ms = fired_ms
    WHERE resolved_ms IS NULL
      AND id NOT IN (SELECT min(id) FROM alerts WHERE resolved_ms IS NULL GROUP BY key);
CREATE UNIQUE INDEX alerts_open_once ON alerts (key) WHERE resolved_ms IS NULL;
