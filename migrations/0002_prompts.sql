-- Prompt library, redaction policies, Playground history and call bodies.

-- NULL = the default policy (redact what is stored, keep no bodies).
ALTER TABLE endpoints ADD COLUMN redaction_json TEXT;

CREATE TABLE prompts (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    created_ms  INTEGER NOT NULL
);

-- Versions are immutable: numbered per prompt, one per distinct content (by hash).
CREATE TABLE prompt_versions (
    id           INTEGER PRIMARY KEY,
    prompt_id    INTEGER NOT NULL REFERENCES prompts (id),
    version      INTEGER NOT NULL CHECK (version >= 1),
    content_json TEXT    NOT NULL,
    hash         TEXT    NOT NULL,
    note         TEXT    NOT NULL,
    author       TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    UNIQUE (prompt_id, version),
    UNIQUE (prompt_id, hash)
);

CREATE TRIGGER prompt_versions_are_immutable BEFORE UPDATE ON prompt_versions
BEGIN
    SELECT RAISE(ABORT, 'prompt versions are immutable');
END;

CREATE TRIGGER prompt_versions_are_kept BEFORE DELETE ON prompt_versions
BEGIN
    SELECT RAISE(ABORT, 'prompt versions are immutable');
END;

-- Where each label points now…
CREATE TABLE prompt_labels (
    prompt_id  INTEGER NOT NULL REFERENCES prompts (id),
    label      TEXT    NOT NULL,
    version_id INTEGER NOT NULL REFERENCES prompt_versions (id),
    PRIMARY KEY (prompt_id, label)
) WITHOUT ROWID;

-- …and every move that got it there.
CREATE TABLE prompt_label_moves (
    id              INTEGER PRIMARY KEY,
    prompt_id       INTEGER NOT NULL REFERENCES prompts (id),
    label           TEXT    NOT NULL,
    from_version_id INTEGER REFERENCES prompt_versions (id),
    to_version_id   INTEGER NOT NULL REFERENCES prompt_versions (id),
    author          TEXT    NOT NULL,
    at_ms           INTEGER NOT NULL
);

CREATE INDEX prompt_label_moves_prompt ON prompt_label_moves (prompt_id, id);

-- Playground (and `milc chat`) history: inputs after redaction, variables, parameters, output
-- and figures as JSON; `search` is the lower-cased text that history search matches.
CREATE TABLE history (
    id                INTEGER PRIMARY KEY,
    at_ms             INTEGER NOT NULL,
    call_id           INTEGER REFERENCES calls (id) ON DELETE SET NULL,
    prompt_version_id INTEGER REFERENCES prompt_versions (id),
    entry_json        TEXT    NOT NULL,
    search            TEXT    NOT NULL
);

-- Request and response bodies, only where the endpoint's policy allows it, always redacted.
CREATE TABLE call_bodies (
    call_id       INTEGER PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    request_json  TEXT NOT NULL,
    response_text TEXT NOT NULL
);
