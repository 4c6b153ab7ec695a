-- Who did what to the store, and when: one row per change a person (or a process acting for
-- one, e.g. a gateway's canary judge) made — endpoints, datasets, runs, comparisons, routes,
-- keys, prices, budgets, use cases, schedules, settings. What a team lead reads to know who
-- changed something; the tables themselves keep only what they are about.
CREATE TABLE activity (
    id      INTEGER PRIMARY KEY,
    at_ms   INTEGER NOT NULL,
    author  TEXT    NOT NULL,
    -- What was done, as `subject.verb`: `endpoint.add`, `routes.load`, `price.set`, …
    action  TEXT    NOT NULL,
    -- What it was done to: a name, `name@version`, `#id`.
    subject TEXT    NOT NULL
);
CREATE INDEX activity_at ON activity (at_ms);
