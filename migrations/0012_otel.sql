-- Where this database's calls are exported as OpenTelemetry spans (OTLP over HTTP/protobuf):
-- one row at most, none when export is off. Header values may be secrets (a collector's
-- Authorization), so they live in the OS keyring; only their names are kept here.
CREATE TABLE otel_export (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    endpoint TEXT NOT NULL,
    headers_json TEXT NOT NULL DEFAULT '[]',
    updated_ms INTEGER NOT NULL
);
