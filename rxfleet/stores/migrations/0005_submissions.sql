-- Issue 17: submissions as first-class records (docs/protocol.md).

-- One row per submission: each time a claim id entered a run and was recorded (a
-- billing, a resend of the same content, a correction, a reversal, a rebill; a
-- quarantined one too, never sent: attempts 0). Written by the record link in the
-- same transaction as its result, exactly once per (run_id, seq); pruned with it.
-- The Idempotency-Key is `{claim_id}~{16 hex}` (a keyed HMAC of the content: no
-- PHI); `digest` is its hex part, the same for a resend, another for a correction.
CREATE TABLE submissions (
    run_id               text NOT NULL REFERENCES runs ON DELETE CASCADE,
    seq                  integer NOT NULL,
    claim_id             text NOT NULL,
    idempotency_key      text,                     -- null for rows written before 0005
    digest               text,
    transaction_code     text,                     -- B1, B2, B3 as submitted
    source               text,                     -- file:line, NCPDP file:line:transaction
    status               text NOT NULL,            -- PAID, REJECTED, REVERSED, QUARANTINED
    route                text,
    reason               text,
    reject_codes         text[] NOT NULL DEFAULT '{}',
    errors               text[] NOT NULL DEFAULT '{}',
    attempts             integer NOT NULL DEFAULT 0,
    amount_paid          numeric(8, 2),
    patient_pay          numeric(8, 2),
    authorization_number text,
    recorded_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);
CREATE INDEX submissions_by_claim ON submissions (claim_id, recorded_at);
CREATE INDEX submissions_by_day ON submissions USING brin (recorded_at);

-- The results recorded before this migration are submissions too (with no key).
INSERT INTO submissions (run_id, seq, claim_id, transaction_code, source, status, route,
    reason, reject_codes, errors, attempts, amount_paid, patient_pay, authorization_number,
    recorded_at)
SELECT run_id, seq, claim_id, transaction_code, source, status, route, reason, reject_codes,
    errors, attempts, amount_paid, patient_pay, authorization_number, recorded_at
FROM results WHERE claim_id IS NOT NULL;
