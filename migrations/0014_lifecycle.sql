-- The two ends of the lifecycle: requirements cards (use cases with SLOs, their candidates and
-- the evidence attached to them), feasibility load tests, scheduled evaluations, drift watches,
-- and the endpoint's retirement (a sunset date and a replacement).

-- A deprecated endpoint names when it stops and what replaces it.
ALTER TABLE endpoints ADD COLUMN sunset_ms INTEGER;
ALTER TABLE endpoints ADD COLUMN replacement_id INTEGER REFERENCES endpoints (id) ON DELETE SET NULL;

-- A use case: who owns it, and its SLOs and expected traffic as typed (`milc_api::UseCaseSpec`).
CREATE TABLE usecases (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    spec_json   TEXT    NOT NULL,
    created_ms  INTEGER NOT NULL,
    updated_ms  INTEGER NOT NULL
);

-- A candidate: prompt version × endpoint (× parameters); at most one per card is chosen.
CREATE TABLE usecase_candidates (
    id                INTEGER PRIMARY KEY,
    usecase_id        INTEGER NOT NULL REFERENCES usecases (id) ON DELETE CASCADE,
    prompt_version_id INTEGER NOT NULL REFERENCES prompt_versions (id),
    endpoint_id       INTEGER NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
    params_json       TEXT    NOT NULL,
    chosen            INTEGER NOT NULL DEFAULT 0,
    created_ms        INTEGER NOT NULL,
    UNIQUE (usecase_id, prompt_version_id, endpoint_id, params_json)
);

CREATE UNIQUE INDEX usecase_chosen ON usecase_candidates (usecase_id) WHERE chosen = 1;

-- Runs and load tests attached to a card as evidence.
CREATE TABLE usecase_evidence (
    usecase_id  INTEGER NOT NULL REFERENCES usecases (id) ON DELETE CASCADE,
    kind        TEXT    NOT NULL CHECK (kind IN ('run', 'loadtest')),
    ref_id      INTEGER NOT NULL,
    attached_ms INTEGER NOT NULL,
    PRIMARY KEY (usecase_id, kind, ref_id)
) WITHOUT ROWID;

-- A feasibility load test: concurrency levels against one endpoint, figures per level.
CREATE TABLE loadtests (
    id                INTEGER PRIMARY KEY,
    endpoint_id       INTEGER REFERENCES endpoints (id) ON DELETE SET NULL,
    endpoint_name     TEXT    NOT NULL,
    prompt_version_id INTEGER REFERENCES prompt_versions (id),
    spec_json         TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('running', 'finished', 'cancelled', 'failed')),
    levels_json       TEXT    NOT NULL DEFAULT '[]',
    created_ms        INTEGER NOT NULL,
    finished_ms       INTEGER
);

-- A scheduled evaluation: a run spec (a card's dataset and chosen candidate, or one typed)
-- executed every `every_ms`.
CREATE TABLE schedules (
    id                INTEGER PRIMARY KEY,
    name              TEXT    NOT NULL UNIQUE,
    usecase_id        INTEGER REFERENCES usecases (id) ON DELETE CASCADE,
    endpoint_id       INTEGER REFERENCES endpoints (id) ON DELETE CASCADE,
    prompt_version_id INTEGER REFERENCES prompt_versions (id),
    spec_json         TEXT    NOT NULL,
    every_ms          INTEGER NOT NULL CHECK (every_ms >= 60000),
    next_due_ms       INTEGER NOT NULL,
    created_ms        INTEGER NOT NULL
);

CREATE TABLE schedule_runs (
    schedule_id INTEGER NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    at_ms       INTEGER NOT NULL,
    PRIMARY KEY (schedule_id, run_id)
) WITHOUT ROWID;

-- What drift is watched for: an endpoint, a prompt version or a route, over a window compared
-- with the window before it.
CREATE TABLE drift_watches (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('endpoint', 'prompt', 'route')),
    subject     TEXT    NOT NULL,
    window_ms   INTEGER NOT NULL CHECK (window_ms >= 60000),
    created_ms  INTEGER NOT NULL,
    UNIQUE (kind, subject)
);
