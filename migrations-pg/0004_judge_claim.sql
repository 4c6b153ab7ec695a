-- Mirrors migrations/0017_judge_claim.sql: when a canary judge last took its look at a route
-- (claimed by a conditional update, so one gateway of a fleet judges each look).
ALTER TABLE routes ADD COLUMN judged_ms BIGINT;
