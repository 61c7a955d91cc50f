-- rxfleet system of record: runs, results, audit lineage, dead letters.
-- No PHI in any table: claims are tokenized (patient_token) before they get here.

-- One row per run: what went in, with which options, and where the run is.
CREATE TABLE runs (
    run_id      text PRIMARY KEY,
    inputs      text NOT NULL,                      -- description of the inputs (file names)
    input_hash  text,                               -- SHA-256 of the input bytes (dedupe runs)
    options     jsonb NOT NULL DEFAULT '{}',        -- the options that shape the results
    state       text NOT NULL,                      -- producing, produced, done, failed...
    total       integer,                            -- claims in the input, once known
    counts      jsonb NOT NULL DEFAULT '{}',        -- claims per status, snapshot at the end
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX runs_by_input ON runs (input_hash, created_at DESC);
CREATE INDEX runs_by_created ON runs (created_at DESC);

-- One row per claim per run, written exactly once (docs/results.md plus lineage).
CREATE TABLE results (
    run_id        text NOT NULL REFERENCES runs ON DELETE CASCADE,
    seq           integer NOT NULL,                 -- the claim's position in the input
    claim_id      text,
    status        text NOT NULL,                    -- PAID, REJECTED, QUARANTINED
    severity      text,
    errors        text[] NOT NULL DEFAULT '{}',     -- validation codes
    ndc11         text,
    gpi           text,
    reject_codes  text[] NOT NULL DEFAULT '{}',     -- NCPDP reject codes
    route         text,
    patient_token text,                             -- a token, never the patient
    attempts      integer NOT NULL DEFAULT 0,
    reason        text,                             -- why it ended so, e.g. retries_exhausted
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)                       -- by run, in seq order; exactly once
);
CREATE INDEX results_by_claim ON results (claim_id);
CREATE INDEX results_by_reject ON results USING gin (reject_codes);
CREATE INDEX results_by_day ON results USING brin (recorded_at);

-- The audit trail: every stage every claim went through. Append-only (see the
-- triggers below), never PHI: codes, hashes and versions only.
CREATE TABLE audit_events (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         text NOT NULL,                   -- no FK: the trail may outlive the run
    seq            integer NOT NULL,
    claim_id       text,
    stage          text NOT NULL,                   -- ingested, validated, ..., recorded
    outcome        text,
    codes          text[] NOT NULL DEFAULT '{}',
    attempt        integer,
    trace_id       text,
    payload_hash   text,                            -- SHA-256 of the tokenized claim
    schema_version text,
    matrix_version text,
    at             timestamptz NOT NULL DEFAULT now(),
    detail         jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_by_run ON audit_events (run_id, seq, at, id);
CREATE INDEX audit_by_claim ON audit_events (claim_id);
CREATE INDEX audit_by_day ON audit_events USING brin (at);

-- Claims a person must look at, or that can be replayed.
CREATE TABLE dead_letters (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id        text NOT NULL REFERENCES runs ON DELETE CASCADE,
    seq           integer NOT NULL,
    claim_id      text,
    source        text,                             -- input file
    line          integer,                          -- line (or record) in it
    field         text,                             -- the first field at fault, if any
    status        text,
    route         text NOT NULL,
    codes         text[] NOT NULL DEFAULT '{}',     -- validation and reject codes
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    replayed_at   timestamptz,
    replay_run_id text,
    UNIQUE (run_id, seq)
);
CREATE INDEX dead_letters_by_day ON dead_letters USING brin (created_at);
CREATE INDEX dead_letters_open ON dead_letters (id) WHERE replayed_at IS NULL;

-- Append-only: UPDATE, DELETE and TRUNCATE of audit_events are refused, except
-- the DELETE that rx_prune_audit() does (it sets rxfleet.pruning for its own
-- transaction only). A guard against mistakes, not against a superuser.
CREATE FUNCTION rx_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('rxfleet.pruning', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

CREATE TRIGGER audit_events_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION rx_audit_append_only();

-- Retention: delete up to batch_size audit events older than cutoff; returns how many.
CREATE FUNCTION rx_prune_audit(cutoff timestamptz, batch_size integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    deleted integer;
BEGIN
    PERFORM set_config('rxfleet.pruning', 'on', true);
    DELETE FROM audit_events WHERE id IN (
        SELECT id FROM audit_events WHERE at < cutoff ORDER BY id LIMIT batch_size);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    PERFORM set_config('rxfleet.pruning', 'off', true);
    RETURN deleted;
END $$;
