-- JSON columns hold text, as in SQLite (the JSONB of 0001 becomes TEXT).
--
-- The console writes one SQL text for both engines and binds JSON as the text serde wrote;
-- a JSONB column would refuse a text argument and read back as another type. So JSON is kept
-- as text, exactly as written (as 0001 already did for prompt versions and dataset items),
-- and the few statements that look inside it cast to jsonb where they do (milc-core's
-- db::json_text). Defaults are dropped and set again because a jsonb default is not text.

ALTER TABLE endpoints
    ALTER COLUMN headers_json DROP DEFAULT,
    ALTER COLUMN headers_json TYPE TEXT USING headers_json::text,
    ALTER COLUMN headers_json SET DEFAULT '{}',
    ALTER COLUMN test_json TYPE TEXT USING test_json::text,
    ALTER COLUMN redaction_json TYPE TEXT USING redaction_json::text,
    ALTER COLUMN lineage_json TYPE TEXT USING lineage_json::text;

ALTER TABLE history
    ALTER COLUMN entry_json TYPE TEXT USING entry_json::text;

ALTER TABLE call_bodies
    ALTER COLUMN request_json TYPE TEXT USING request_json::text;

ALTER TABLE dataset_versions
    ALTER COLUMN variables_json TYPE TEXT USING variables_json::text;

ALTER TABLE runs
    ALTER COLUMN spec_json TYPE TEXT USING spec_json::text;

ALTER TABLE run_results
    ALTER COLUMN result_json TYPE TEXT USING result_json::text;

ALTER TABLE comparisons
    ALTER COLUMN spec_json TYPE TEXT USING spec_json::text;

ALTER TABLE comparison_variants
    ALTER COLUMN params_json TYPE TEXT USING params_json::text;

ALTER TABLE votes
    ALTER COLUMN criteria_json TYPE TEXT USING criteria_json::text;

ALTER TABLE routes
    ALTER COLUMN spec_json TYPE TEXT USING spec_json::text,
    ALTER COLUMN canary_json TYPE TEXT USING canary_json::text,
    ALTER COLUMN last_verdict_json TYPE TEXT USING last_verdict_json::text;

ALTER TABLE canary_events
    ALTER COLUMN verdict_json TYPE TEXT USING verdict_json::text;

ALTER TABLE otel_export
    ALTER COLUMN headers_json DROP DEFAULT,
    ALTER COLUMN headers_json TYPE TEXT USING headers_json::text,
    ALTER COLUMN headers_json SET DEFAULT '[]';

ALTER TABLE usecases
    ALTER COLUMN spec_json TYPE TEXT USING spec_json::text;

ALTER TABLE usecase_candidates
    ALTER COLUMN params_json TYPE TEXT USING params_json::text;

ALTER TABLE loadtests
    ALTER COLUMN spec_json TYPE TEXT USING spec_json::text,
    ALTER COLUMN levels_json DROP DEFAULT,
    ALTER COLUMN levels_json TYPE TEXT USING levels_json::text,
    ALTER COLUMN levels_json SET DEFAULT '[]';

ALTER TABLE schedules
    ALTER COLUMN spec_json TYPE TEXT USING spec_json::text;
