-- Runs that can be picked up again, and dead letters that can be replayed.

-- How far the producer got (claims enqueued, in input order), what stopped it
-- early if anything (file and position, no value), and when the run ended.
ALTER TABLE runs ADD COLUMN produced integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN note text;
ALTER TABLE runs ADD COLUMN finished_at timestamptz;
CREATE INDEX runs_open ON runs (created_at) WHERE finished_at IS NULL;

-- What a replay needs to send a dead-lettered claim again: its tokenized work
-- record (no PHI) and its PHI sealed with the vault key (AES-256-GCM, bound to
-- this run and position): encrypted at rest, opened only to send it again, and
-- dropped once replayed or when retention removes the row.
ALTER TABLE dead_letters ADD COLUMN record jsonb;
ALTER TABLE dead_letters ADD COLUMN sealed text;
