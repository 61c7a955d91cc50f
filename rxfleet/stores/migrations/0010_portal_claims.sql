-- Issue 18: claims pulled from a payer portal by `rxfleet sync` (docs/operations.md).

-- One row per claim pulled, written before the claim enters Redis: where it sits in
-- the portal's order (pos, 1, 2, ... per portal) and in its run (run_id, seq, and
-- the batch that carries it). A claim is acknowledged to the portal only once every
-- claim before it and itself have a result (results.run_id, seq), in pos order;
-- acked_at says when. A restarted sync reads from here where it stopped, which
-- claims it pulled but lost (neither recorded nor in Redis: pulled again, same
-- run and seq) and where to acknowledge. No claim content: cursors and positions.
CREATE TABLE portal_claims (
    portal      text NOT NULL,          -- the portal's id (a digest of its URL)
    pos         bigint NOT NULL,        -- the portal's order as pulled
    cursor      text NOT NULL,          -- the claim's cursor: its result's source is portal:<cursor>
    ack_cursor  text,                   -- the cursor that acknowledges through it (null: none)
    run_id      text NOT NULL REFERENCES runs ON DELETE CASCADE,
    seq         integer NOT NULL,
    batch_first integer NOT NULL,
    batch_count integer NOT NULL,
    pulled_at   timestamptz NOT NULL DEFAULT now(),
    acked_at    timestamptz,
    PRIMARY KEY (portal, pos),
    UNIQUE (portal, cursor),
    UNIQUE (run_id, seq)
);
CREATE INDEX portal_claims_unacked ON portal_claims (portal, pos) WHERE acked_at IS NULL;
