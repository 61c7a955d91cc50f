-- Issue 17: results with the money and the why (docs/results.md).

-- What the record asked for (B1 billing, B2 reversal, B3 rebill), the payer's paid
-- answer (authorization number 503-F3; pricing total amount paid 509-F9 and patient
-- pay amount 505-F5, s9(6)v99) and where the claim came from (file:line, NCPDP
-- file:line:transaction; never a value of the claim). Null for rows written before.
ALTER TABLE results ADD COLUMN transaction_code text;
ALTER TABLE results ADD COLUMN amount_paid numeric(8, 2);
ALTER TABLE results ADD COLUMN patient_pay numeric(8, 2);
ALTER TABLE results ADD COLUMN authorization_number text;
ALTER TABLE results ADD COLUMN source text;
