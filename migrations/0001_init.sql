-- Endpoints and the call log. Tokens are never stored here: they live in the OS keyring.

CREATE TABLE endpoints (
    id                  INTEGER PRIMARY KEY,
    name                TEXT    NOT NULL UNIQUE,
    base_url            TEXT    NOT NULL,
    model               TEXT    NOT NULL,
    headers_json        TEXT    NOT NULL DEFAULT '{}',
    -- Prices in integer micro-USD per 1M tokens; NULL cached price = the input price.
    price_in_micros     INTEGER NOT NULL DEFAULT 0 CHECK (price_in_micros >= 0),
    price_cached_micros INTEGER CHECK (price_cached_micros >= 0),
    price_out_micros    INTEGER NOT NULL DEFAULT 0 CHECK (price_out_micros >= 0),
    timeout_ms          INTEGER NOT NULL DEFAULT 60000 CHECK (timeout_ms > 0),
    max_retries         INTEGER NOT NULL DEFAULT 2 CHECK (max_retries >= 0),
    status              TEXT    NOT NULL DEFAULT 'active'
                                CHECK (status IN ('active', 'deprecated', 'retired')),
    has_token           INTEGER NOT NULL DEFAULT 0,
    created_ms          INTEGER NOT NULL,
    -- Last connection test, shown in the endpoint list.
    test_at_ms          INTEGER,
    test_json           TEXT
);

-- Model names are interned so that a call row stays a handful of integers.
CREATE TABLE models (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);

-- One row per call from any source. Small integer codes (see milc-core's store.rs) keep rows
-- compact: this table will hold millions of rows. Bodies are not stored.
CREATE TABLE calls (
    id                INTEGER PRIMARY KEY,
    at_ms             INTEGER NOT NULL,
    endpoint_id       INTEGER REFERENCES endpoints (id) ON DELETE SET NULL,
    model_id          INTEGER NOT NULL REFERENCES models (id),
    source            INTEGER NOT NULL,
    outcome           INTEGER NOT NULL,
    http_status       INTEGER,
    error_kind        INTEGER,
    latency_ms        INTEGER NOT NULL,
    ttft_ms           INTEGER,
    prompt_tokens     INTEGER,
    cached_tokens     INTEGER,
    completion_tokens INTEGER,
    reasoning_tokens  INTEGER,
    cost_pico_usd     INTEGER,
    usage_reported    INTEGER
) STRICT;

CREATE INDEX calls_endpoint_at ON calls (endpoint_id, at_ms);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
