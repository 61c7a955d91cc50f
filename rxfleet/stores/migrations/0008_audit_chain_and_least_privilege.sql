-- Issue 21: a tamper-evident audit trail, and an audit trail the fleet's role cannot edit.
-- docs/security.md says it for operators: who owns what, which role gets which grant.

-- Each event carries its place in its run's chain and two hashes (SHA-256, hex):
-- hash = sha256(prev_hash || rx_audit_canonical(the event)); prev_hash is the hash of
-- the run's event before it ('' for the run's first, the checkpoint's once pruned).
-- Events written before this migration have none of the three (unchained).
ALTER TABLE audit_events ADD COLUMN chain_seq bigint;
ALTER TABLE audit_events ADD COLUMN prev_hash text;
ALTER TABLE audit_events ADD COLUMN hash text;
CREATE UNIQUE INDEX audit_chain ON audit_events (run_id, chain_seq);

-- Where retention cut a run's chain: the last event pruned (its place and hash), so
-- `rxfleet audit verify` starts from there. Written by rx_prune_audit() only.
CREATE TABLE audit_checkpoints (
    run_id    text PRIMARY KEY,
    chain_seq bigint NOT NULL,
    hash      text NOT NULL,
    pruned    bigint NOT NULL,                      -- events of the run pruned so far
    at        timestamptz NOT NULL DEFAULT now()
);

-- The shortest retention of the audit trail, in days: rx_prune_audit() never deletes
-- a younger event, whatever cutoff its caller asks for. Set by `rxfleet db upgrade`
-- (RXFLEET_RETENTION_DAYS) as the owner; the fleet's role may only read it.
CREATE TABLE audit_retention (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    days     integer NOT NULL CHECK (days >= 1)
);
INSERT INTO audit_retention (days) VALUES (2190);

-- The text an event's hash covers: every column a writer gives, in a fixed order,
-- as jsonb text (deterministic for the stored values), the time in UTC microseconds.
CREATE FUNCTION rx_audit_canonical(
    run_id text, chain_seq bigint, seq integer, claim_id text, stage text, outcome text,
    codes text[], attempt integer, trace_id text, payload_hash text, schema_version text,
    matrix_version text, at timestamptz, detail jsonb
) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT jsonb_build_array(run_id, chain_seq, seq, claim_id, stage, outcome, codes, attempt,
        trace_id, payload_hash, schema_version, matrix_version,
        to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), detail)::text
$$;

-- Append the session's staged events (rx_events_in, a temp table the record link
-- fills with COPY) to the run's chain. One writer per run at a time: the advisory
-- lock is held to the end of the transaction, so the next batch of the run chains
-- to this one's last event; other runs are not held up. Returns the events added.
CREATE FUNCTION rx_append_audit(p_run text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    pos bigint;
    prev text;
    hashes text[] := '{}';
    prevs text[] := '{}';
    r record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('rxfleet.audit:' || p_run, 0));
    SELECT e.chain_seq, e.hash INTO pos, prev FROM audit_events e
        WHERE e.run_id = p_run AND e.chain_seq IS NOT NULL ORDER BY e.chain_seq DESC LIMIT 1;
    IF NOT FOUND THEN
        SELECT c.chain_seq, c.hash INTO pos, prev FROM audit_checkpoints c WHERE c.run_id = p_run;
        IF NOT FOUND THEN
            pos := 0;
            prev := '';
        END IF;
    END IF;
    FOR r IN SELECT rx_audit_canonical(p_run, pos + row_number() OVER (ORDER BY s.ord),
            s.seq, s.claim_id, s.stage, s.outcome, s.codes, s.attempt, s.trace_id,
            s.payload_hash, s.schema_version, s.matrix_version, s.at, s.detail) AS canonical
            FROM rx_events_in s ORDER BY s.ord LOOP
        prevs := prevs || prev;
        prev := encode(sha256(convert_to(prev || r.canonical, 'UTF8')), 'hex');
        hashes := hashes || prev;
    END LOOP;
    INSERT INTO audit_events (run_id, seq, claim_id, stage, outcome, codes, attempt, trace_id,
        payload_hash, schema_version, matrix_version, at, detail, chain_seq, prev_hash, hash)
    SELECT p_run, s.seq, s.claim_id, s.stage, s.outcome, s.codes, s.attempt, s.trace_id,
        s.payload_hash, s.schema_version, s.matrix_version, s.at, s.detail, pos + s.i,
        prevs[s.i], hashes[s.i]
    FROM (SELECT x.*, row_number() OVER (ORDER BY x.ord) AS i FROM rx_events_in x) s
    ORDER BY s.i;
    RETURN cardinality(hashes);
END $$;

-- Append-only, closed: UPDATE and TRUNCATE are always refused; a DELETE only inside
-- rx_prune_audit() (the table's owner, with rxfleet.pruning on for its transaction).
-- Setting rxfleet.pruning in another session no longer opens the door.
CREATE OR REPLACE FUNCTION rx_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('rxfleet.pruning', true) = 'on'
            AND current_user = (SELECT pg_get_userbyid(relowner) FROM pg_class
                                WHERE oid = TG_RELID) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;

-- Retention, as the owner (SECURITY DEFINER): deletes audit events older than cutoff,
-- but never one younger than audit_retention allows, and per run only a prefix of its
-- chain (up to its first event still kept), sealing the cut with a checkpoint.
-- Deletes at most about batch_size events; returns how many.
DROP FUNCTION rx_prune_audit(timestamptz, integer);
CREATE FUNCTION rx_prune_audit(cutoff timestamptz, batch_size integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    deleted integer := 0;
    n integer;
    run text;
    blocked text[] := '{}';
BEGIN
    cutoff := least(cutoff, now() - make_interval(days => (SELECT days FROM audit_retention)));
    PERFORM set_config('rxfleet.pruning', 'on', true);
    DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events
        WHERE chain_seq IS NULL AND at < cutoff ORDER BY id LIMIT batch_size);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    WHILE deleted < batch_size LOOP
        SELECT e.run_id INTO run FROM audit_events e
            WHERE e.at < cutoff AND e.chain_seq IS NOT NULL AND e.run_id <> ALL (blocked) LIMIT 1;
        EXIT WHEN NOT FOUND;
        n := rx_prune_run(run, cutoff, batch_size - deleted);
        IF n = 0 THEN
            blocked := blocked || run;
        END IF;
        deleted := deleted + n;
    END LOOP;
    PERFORM set_config('rxfleet.pruning', 'off', true);
    RETURN deleted;
END $$;

-- One run's share of rx_prune_audit(): its chain's first events while they are all
-- older than cutoff (at most budget), then the checkpoint.
CREATE FUNCTION rx_prune_run(p_run text, cutoff timestamptz, budget integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    last_seq bigint;
    last_hash text;
    n integer := 0;
    r record;
BEGIN
    FOR r IN SELECT e.chain_seq, e.hash, e.at FROM audit_events e
            WHERE e.run_id = p_run AND e.chain_seq IS NOT NULL
            ORDER BY e.chain_seq LIMIT budget LOOP
        EXIT WHEN r.at >= cutoff;
        last_seq := r.chain_seq;
        last_hash := r.hash;
        n := n + 1;
    END LOOP;
    IF n = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO audit_checkpoints (run_id, chain_seq, hash, pruned)
        VALUES (p_run, last_seq, last_hash, n)
        ON CONFLICT (run_id) DO UPDATE SET chain_seq = excluded.chain_seq,
            hash = excluded.hash, pruned = audit_checkpoints.pruned + excluded.pruned, at = now();
    DELETE FROM audit_events WHERE run_id = p_run AND chain_seq <= last_seq;
    RETURN n;
END $$;

-- Nobody but the owner may run these unless granted (`rxfleet db upgrade` grants the
-- fleet's role EXECUTE on rx_prune_audit and rx_append_audit, nothing on rx_prune_run).
REVOKE ALL ON FUNCTION rx_prune_audit(timestamptz, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION rx_prune_run(text, timestamptz, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION rx_append_audit(text) FROM PUBLIC;
