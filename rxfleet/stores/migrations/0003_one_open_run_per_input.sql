-- One unfinished run per input (and outcome options): two `rxfleet run` of the
-- same input started together create one run between them; the second picks
-- it up. A run started with --new carries its own key.
CREATE UNIQUE INDEX runs_one_open_per_input ON runs (input_hash)
    WHERE finished_at IS NULL AND input_hash IS NOT NULL;
