-- Datasets for test runs: immutable versions identified by the hash of their items.

CREATE TABLE datasets (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);

CREATE TABLE dataset_versions (
    id             INTEGER PRIMARY KEY,
    dataset_id     INTEGER NOT NULL REFERENCES datasets (id),
    hash           TEXT    NOT NULL,
    items          INTEGER NOT NULL,
    variables_json TEXT    NOT NULL,
    source         TEXT    NOT NULL,
    created_ms     INTEGER NOT NULL,
    -- The last time this content was imported: `NAME` means the most recently imported.
    imported_ms    INTEGER NOT NULL,
    UNIQUE (dataset_id, hash)
);

-- One row per item, in file order; an item is JSON: {"vars", "expected", "metadata"}.
CREATE TABLE dataset_items (
    version_id INTEGER NOT NULL REFERENCES dataset_versions (id),
    idx        INTEGER NOT NULL,
    item_json  TEXT    NOT NULL,
    PRIMARY KEY (version_id, idx)
) WITHOUT ROWID;

CREATE TRIGGER dataset_items_are_immutable BEFORE UPDATE ON dataset_items
BEGIN
    SELECT RAISE(ABORT, 'dataset versions are immutable');
END;
