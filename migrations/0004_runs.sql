-- Test runs and their results: one row per item and repetition, committed as it arrives, so a
-- run killed mid-way resumes with only the missing items.

CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    prompt_version_id  INTEGER NOT NULL REFERENCES prompt_versions (id),
    dataset_version_id INTEGER NOT NULL REFERENCES dataset_versions (id),
    spec_json          TEXT    NOT NULL,
    status             TEXT    NOT NULL CHECK (status IN ('running', 'finished', 'cancelled')),
    created_ms         INTEGER NOT NULL,
    finished_ms        INTEGER
);

CREATE TABLE run_results (
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    item_idx    INTEGER NOT NULL,
    rep         INTEGER NOT NULL,
    call_id     INTEGER REFERENCES calls (id) ON DELETE SET NULL,
    failed      INTEGER NOT NULL,
    passed      INTEGER NOT NULL,
    latency_ms  INTEGER NOT NULL,
    result_json TEXT    NOT NULL,
    PRIMARY KEY (run_id, item_idx, rep)
) WITHOUT ROWID;
