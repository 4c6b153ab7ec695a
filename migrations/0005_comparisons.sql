-- A/B comparisons: variants (prompt version × endpoint × parameters) over one dataset version,
-- each answered by a run, and the pairwise votes cast on their outputs. A vote records which
-- variant was shown on which side, so randomized sides are undone when votes are tallied.

CREATE TABLE comparisons (
    id                 INTEGER PRIMARY KEY,
    name               TEXT    NOT NULL UNIQUE,
    dataset_version_id INTEGER NOT NULL REFERENCES dataset_versions (id),
    spec_json          TEXT    NOT NULL,
    seed               INTEGER NOT NULL,
    created_ms         INTEGER NOT NULL
);

CREATE TABLE comparison_variants (
    comparison_id     INTEGER NOT NULL REFERENCES comparisons (id),
    idx               INTEGER NOT NULL,
    label             TEXT    NOT NULL,
    prompt_version_id INTEGER NOT NULL REFERENCES prompt_versions (id),
    endpoint          TEXT    NOT NULL,
    params_json       TEXT    NOT NULL,
    run_id            INTEGER REFERENCES runs (id),
    PRIMARY KEY (comparison_id, idx),
    UNIQUE (comparison_id, label)
) WITHOUT ROWID;

CREATE TABLE votes (
    id            INTEGER PRIMARY KEY,
    comparison_id INTEGER NOT NULL REFERENCES comparisons (id),
    item_idx      INTEGER NOT NULL,
    left_idx      INTEGER NOT NULL,
    right_idx     INTEGER NOT NULL,
    verdict       TEXT    NOT NULL CHECK (verdict IN ('left', 'right', 'tie', 'both_bad')),
    rater         TEXT    NOT NULL,
    source        TEXT    NOT NULL CHECK (source IN ('human', 'judge', 'import')),
    comment       TEXT,
    criteria_json TEXT,
    at_ms         INTEGER NOT NULL,
    CHECK (left_idx <> right_idx),
    UNIQUE (comparison_id, rater, item_idx, left_idx, right_idx)
);

CREATE INDEX votes_by_comparison ON votes (comparison_id, source);
