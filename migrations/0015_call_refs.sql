-- Deleting calls (an archive's purge, the sample project's removal) sets the call ids that
-- point at them to NULL: without an index every deleted call scanned both tables.
CREATE INDEX run_results_call ON run_results (call_id);
CREATE INDEX history_call ON history (call_id);
