-- Usage and cost: each call records its prompt version and the dated price it was costed with;
-- effective-dated prices and a log of cost recomputations; hourly and daily rollups the charts read;
-- budgets and alerts.

ALTER TABLE calls ADD COLUMN prompt_version_id INTEGER;
ALTER TABLE calls ADD COLUMN price_id INTEGER;
CREATE INDEX calls_at ON calls (at_ms);

-- A price that applies from `from_ms` on (until the next one); before the first, the endpoint's
-- own price applies.
CREATE TABLE prices (
    id            INTEGER PRIMARY KEY,
    endpoint_id   INTEGER NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    from_ms       INTEGER NOT NULL,
    in_micros     INTEGER NOT NULL CHECK (in_micros >= 0),
    cached_micros INTEGER CHECK (cached_micros >= 0),
    out_micros    INTEGER NOT NULL CHECK (out_micros >= 0),
    created_ms    INTEGER NOT NULL,
    UNIQUE (endpoint_id, from_ms)
);

CREATE TABLE recomputations (
    id            INTEGER PRIMARY KEY,
    at_ms         INTEGER NOT NULL,
    since_ms      INTEGER NOT NULL,
    calls_checked INTEGER NOT NULL,
    calls_changed INTEGER NOT NULL,
    before_pico   INTEGER NOT NULL,
    after_pico    INTEGER NOT NULL,
    author        TEXT    NOT NULL
);

-- One row per UTC hour × endpoint × prompt version × source (0 = none), kept as calls are
-- written. `latency_hist` holds the calls per latency bucket (64 log-spaced buckets, ×1.25 each),
-- sparse: a bucket's index byte, then its count as a LEB128 varint.
CREATE TABLE usage_hourly (
    hour_ms           INTEGER NOT NULL,
    endpoint_id       INTEGER NOT NULL,
    prompt_version_id INTEGER NOT NULL,
    source            INTEGER NOT NULL,
    calls             INTEGER NOT NULL,
    errors            INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens  INTEGER NOT NULL,
    cost_pico         INTEGER NOT NULL,
    estimated_calls   INTEGER NOT NULL,
    latency_hist      BLOB    NOT NULL,
    PRIMARY KEY (hour_ms, endpoint_id, prompt_version_id, source)
) WITHOUT ROWID;

-- The same per UTC day, so a month of charts reads a few thousand rows.
CREATE TABLE usage_daily (
    day_ms            INTEGER NOT NULL,
    endpoint_id       INTEGER NOT NULL,
    prompt_version_id INTEGER NOT NULL,
    source            INTEGER NOT NULL,
    calls             INTEGER NOT NULL,
    errors            INTEGER NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    cached_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens  INTEGER NOT NULL,
    cost_pico         INTEGER NOT NULL,
    estimated_calls   INTEGER NOT NULL,
    latency_hist      BLOB    NOT NULL,
    PRIMARY KEY (day_ms, endpoint_id, prompt_version_id, source)
) WITHOUT ROWID;

-- endpoint_id 0 = every endpoint together.
CREATE TABLE budgets (
    endpoint_id  INTEGER PRIMARY KEY,
    daily_pico   INTEGER CHECK (daily_pico >= 0),
    monthly_pico INTEGER CHECK (monthly_pico >= 0),
    updated_ms   INTEGER NOT NULL
);

-- An episode of a condition, keyed by rule, endpoint (and period for budgets).
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY,
    key         TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    endpoint_id INTEGER,
    message     TEXT    NOT NULL,
    value       REAL    NOT NULL,
    threshold   REAL    NOT NULL,
    fired_ms    INTEGER NOT NULL,
    resolved_ms INTEGER,
    acked_ms    INTEGER
);
CREATE INDEX alerts_by_key ON alerts (key, resolved_ms);
