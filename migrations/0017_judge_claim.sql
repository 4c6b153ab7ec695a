-- When a canary judge last took its look at a route. Several gateways share one store and each
-- runs the judge's clock; the one whose conditional update claims the look judges, so a verdict
-- (and what it does: a rollback, a promotion, an alert) is taken once for the whole fleet.
ALTER TABLE routes ADD COLUMN judged_ms INTEGER;
