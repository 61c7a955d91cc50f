-- The audit chain in one statement: rx_append_audit hashes a batch's events with a
-- running aggregate (rx_chain, a window over the batch in append order) instead of a
-- row-by-row loop. The hashes are the same: hash = sha256(prev_hash || canonical),
-- canonical = rx_audit_canonical(...) as before, so chains written before verify as
-- they did. PostgreSQL's CPU to record a claim with eight events: 0.24 ms with the
-- loop, 0.20 ms with the aggregate, 0.13 ms with no chain at all (2-core machine).

-- One step of the chain: the hash after ``state`` (the hash before it; NULL at the
-- batch's first event, which chains to ``prev``, the run's last hash) and ``canonical``.
CREATE FUNCTION rx_chain_step(state text, prev text, canonical text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT encode(sha256(convert_to(coalesce(state, prev) || canonical, 'UTF8')), 'hex')
$$;
CREATE AGGREGATE rx_chain(text, text) (SFUNC = rx_chain_step, STYPE = text);

-- Append the session's staged events (rx_events_in) to the run's chain, under the
-- run's advisory lock (held to the end of the transaction): returns the events added.
CREATE OR REPLACE FUNCTION rx_append_audit(p_run text) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    pos bigint;
    prev text;
    n integer;
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
    INSERT INTO audit_events (run_id, seq, claim_id, stage, outcome, codes, attempt, trace_id,
        payload_hash, schema_version, matrix_version, at, detail, chain_seq, prev_hash, hash)
    SELECT p_run, c.seq, c.claim_id, c.stage, c.outcome, c.codes, c.attempt, c.trace_id,
        c.payload_hash, c.schema_version, c.matrix_version, c.at, c.detail, c.chain_seq,
        coalesce(lag(c.hash) OVER (ORDER BY c.chain_seq), prev), c.hash
    FROM (SELECT s.*, pos + s.i AS chain_seq,
                 rx_chain(prev, rx_audit_canonical(p_run, pos + s.i, s.seq, s.claim_id, s.stage,
                     s.outcome, s.codes, s.attempt, s.trace_id, s.payload_hash,
                     s.schema_version, s.matrix_version, s.at, s.detail))
                     OVER (ORDER BY s.i ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS hash
          FROM (SELECT x.*, row_number() OVER (ORDER BY x.ord) AS i FROM rx_events_in x) s) c
    ORDER BY c.chain_seq;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;
