-- The gateway: routes (what clients send as `model`) and their arms, gateway keys (only a
-- hash is kept), what the gateway adds to a logged call, users' feedback, and canary events.

CREATE TABLE routes (
    id                INTEGER PRIMARY KEY,
    model             TEXT    NOT NULL UNIQUE,
    -- The route as a person last wrote it (file, CLI, window): loading the same file again
    -- changes nothing, so a canary's verdict survives a restart.
    spec_json         TEXT    NOT NULL,
    sticky            TEXT,
    canary_json       TEXT,
    canary_state      TEXT CHECK (canary_state IN ('running', 'rolled_back', 'promoted')),
    canary_started_ms INTEGER,
    -- The judge's last verdict (its always-valid p-values carry over to the next look).
    last_verdict_json TEXT,
    position          INTEGER NOT NULL,
    updated_ms        INTEGER NOT NULL
);

CREATE TABLE route_arms (
    id          INTEGER PRIMARY KEY,
    route_id    INTEGER NOT NULL REFERENCES routes (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    endpoint_id INTEGER NOT NULL REFERENCES endpoints (id) ON DELETE RESTRICT,
    prompt      TEXT,
    weight      REAL    NOT NULL CHECK (weight >= 0),
    timeout_ms  INTEGER CHECK (timeout_ms > 0),
    max_retries INTEGER CHECK (max_retries >= 0),
    fallback    TEXT,
    position    INTEGER NOT NULL,
    UNIQUE (route_id, name)
);

CREATE TABLE gateway_keys (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    -- SHA-256 of the key, hex; the key itself is shown once and never stored.
    hash              TEXT    NOT NULL UNIQUE,
    prefix            TEXT    NOT NULL,
    rate_per_min      INTEGER CHECK (rate_per_min > 0),
    daily_budget_pico INTEGER CHECK (daily_budget_pico >= 0),
    created_ms        INTEGER NOT NULL,
    revoked_ms        INTEGER
);

-- What a gateway call adds to its row in `calls`: written in the same transaction.
CREATE TABLE gateway_calls (
    call_id     INTEGER PRIMARY KEY REFERENCES calls (id) ON DELETE CASCADE,
    -- The `x-milc-call-id` the client saw (random, so call ids are not guessable).
    public_id   TEXT    NOT NULL UNIQUE,
    route_id    INTEGER NOT NULL,
    arm         TEXT    NOT NULL,
    -- Set when this arm answered because `fallback_for`'s upstream failed (not an assignment).
    fallback_for TEXT,
    key_id      INTEGER,
    -- Salted SHA-256 of the caller id, never the id itself.
    caller_hash TEXT
) STRICT;

CREATE INDEX gateway_calls_route ON gateway_calls (route_id, call_id);

CREATE TABLE feedback (
    id      INTEGER PRIMARY KEY,
    call_id INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
    score   REAL    NOT NULL CHECK (score >= 0 AND score <= 1),
    comment TEXT,
    key_id  INTEGER,
    at_ms   INTEGER NOT NULL
);

CREATE INDEX feedback_call ON feedback (call_id);

CREATE TABLE canary_events (
    id           INTEGER PRIMARY KEY,
    route_id     INTEGER NOT NULL REFERENCES routes (id) ON DELETE CASCADE,
    at_ms        INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    actor        TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    verdict_json TEXT
);
