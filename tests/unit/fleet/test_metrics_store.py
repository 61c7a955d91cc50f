"""The fleet's counters: counted with the retire, exactly once; latencies per round."""

from __future__ import annotations

import fakeredis
from rich.console import Console

from rxfleet.report import quarantined
from rxfleet.stores.metrics import MetricsStore, RequestTally, claim_fields
from rxfleet.stores.runs import RunStore
from tests.unit.fleet.test_runs import _record


def test_retire_counts_each_claim_once_with_its_labels(
    fake: fakeredis.FakeRedis, runs: RunStore
) -> None:
    store = MetricsStore(fake, "t")
    runs.add("R", [_record(i) for i in range(3)], {})
    tallies = [
        claim_fields("PAID", "ADJUDICATED", []),
        claim_fields("REJECTED", "RETRY_LATER", ["75", "76"]),
        claim_fields("PAID", "ADJUDICATED", []),
    ]
    assert runs.retire("R", 0, [0, 1, 2], tallies, store.key) == (3, 3)
    assert runs.retire("R", 0, [0, 1, 2], tallies, store.key) == (0, 3)  # redelivered
    counted = store.read()
    assert counted.claims == {("PAID", "ADJUDICATED"): 2, ("REJECTED", "RETRY_LATER"): 1}
    assert counted.rejects == {"75": 1, "76": 1}


def test_a_round_adds_latencies_outcomes_and_its_retry_in_one_go(
    fake: fakeredis.FakeRedis,
) -> None:
    store = MetricsStore(fake, "t")
    tally = RequestTally()
    for seconds, outcome in ((0.0004, "P"), (0.03, "R"), (20.0, "GatewayUnavailable")):
        tally.observe(seconds, outcome)
    store.add_round(tally, "fleet pause")
    counted = store.read()
    assert counted.latency_count == 3 and abs(counted.latency_sum - 20.0304) < 1e-6
    assert counted.requests == {"P": 1, "R": 1, "GatewayUnavailable": 1}
    assert counted.retries == {"fleet_pause": 1}
    buckets = dict(counted.cumulative_buckets())
    assert buckets["0.001"] == 1 and buckets["0.05"] == 2 and buckets["+Inf"] == 3


def test_the_quarantine_table_never_folds_a_code() -> None:
    console = Console(width=40, record=True, force_terminal=False)
    row = {"source": "a/very/long/path/to/claims.jsonl", "line": 12, "claim_id": "RX00000012",
           "field": "prescriber_npi", "codes": ["INVALID_PRESCRIBER_NPI"]}  # fmt: skip
    quarantined(console, [row], 1, "")
    text = console.export_text()
    assert "INVALID_PRESCRIBER_NPI" in text  # on one line, whatever the other columns do
