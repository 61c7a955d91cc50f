"""Validation as a step: its histogram counts each claim once, even when the write of
the records after it fails and the link runs again."""

from __future__ import annotations

import fakeredis
import pytest
import redis

from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links.validate import Checks, validate_batch
from rxfleet.stores.metrics import MetricsStore, metrics_key
from rxfleet.stores.runs import RunStore


def _ingested(runs: RunStore, n: int) -> None:
    records = [WorkRecord(seq=i, source="f.jsonl", line=i + 1, claim_id=f"C{i}", fields={})
               for i in range(n)]  # fmt: skip
    runs.add("R", records, {})


def test_a_write_that_fails_counts_nothing_and_the_retry_counts_each_claim_once(
    runs: RunStore, fake: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ingested(runs, 3)
    checks = Checks(metrics=MetricsStore(fake, "t"))
    save = runs.save

    def away(*_: object, **__: object) -> None:
        raise redis.ConnectionError("Redis went away")

    monkeypatch.setattr(runs, "save", away)
    with pytest.raises(redis.ConnectionError):
        validate_batch(runs, "R", range(3), checks)
    assert fake.hget(metrics_key("t"), "hist_count|validation") is None
    monkeypatch.setattr(runs, "save", save)
    report = validate_batch(runs, "R", range(3), checks)
    assert report.done == 3 and report.quarantined == 3  # no fields at all: FATAL
    assert fake.hget(metrics_key("t"), "hist_count|validation") == "3"
    assert validate_batch(runs, "R", range(3), checks).done == 0  # nothing waits any more
    assert fake.hget(metrics_key("t"), "hist_count|validation") == "3"
    assert {r.stage for r in runs.load("R", range(3))} == {Stage.ROUTED}
