-- Issue 18: the versioned formulary (formulary webhooks) and token rotations.

-- Every formulary event the payer sent and rxfleet answered 204: stored before the
-- answer, once per event_id (a resend changes nothing), applied in sequence order.
-- `applied_at` is null while the event waits for an earlier sequence (a gap).
CREATE TABLE formulary_events (
    event_id     text PRIMARY KEY,
    sequence     bigint NOT NULL UNIQUE CHECK (sequence > 0),
    published_at timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    applied_at   timestamptz,
    applied_rank bigint UNIQUE,          -- 1, 2, 3 ... in the order the events were applied
    changes      jsonb NOT NULL          -- the event's changes as received (no PHI: drugs only)
);
CREATE INDEX formulary_events_waiting ON formulary_events (sequence) WHERE applied_at IS NULL;

-- The versioned formulary: one row per NDC per event that changed it, never updated.
-- An NDC's state at version V is its row with the highest version <= V.
CREATE TABLE formulary_entries (
    ndc11          text NOT NULL,
    version        bigint NOT NULL REFERENCES formulary_events (sequence),
    event_id       text NOT NULL,
    gpi14          text NOT NULL,
    covered        boolean NOT NULL,
    tier           smallint,
    prior_auth     boolean NOT NULL DEFAULT false,
    step_therapy   boolean NOT NULL DEFAULT false,
    quantity_limit numeric,
    PRIMARY KEY (ndc11, version)
);
CREATE INDEX formulary_entries_by_version ON formulary_entries (version);

-- The formulary's version: the sequence of the last event applied (0: none yet).
CREATE TABLE formulary_state (
    one              boolean PRIMARY KEY DEFAULT true CHECK (one),
    applied_sequence bigint NOT NULL DEFAULT 0,
    updated_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO formulary_state DEFAULT VALUES;

-- A portal token rotation: who rotated it, why, the old and the new token's expiry.
-- Never the token.
CREATE TABLE token_rotations (
    id             bigserial PRIMARY KEY,
    rotated_at     timestamptz NOT NULL DEFAULT now(),
    rotated_by     text NOT NULL,       -- the process: node name or host:pid
    reason         text NOT NULL,       -- expiring, missing, invalid_token (REJ_001), ...
    old_expires_at timestamptz,         -- null when there was no token
    new_expires_at timestamptz NOT NULL
);
CREATE INDEX token_rotations_by_time ON token_rotations USING brin (rotated_at);
