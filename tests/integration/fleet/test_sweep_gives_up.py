"""A link that fails on a batch every time (``LinkFailed``: a claim's content the code
cannot handle) is not re-driven by the sweeper for ever: past
``RXFLEET_MAX_DELIVERIES`` re-drives its open claims end in the dead letters
(``POISON``) and the run finishes, the other batches paid."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import tasks.crosswalk
import tasks.sweep
from rxfleet import context
from rxfleet.lifecycle import open_run, progress
from rxfleet.links.crosswalk import crosswalk_batch
from tests.integration.fleet.fleet_support import Fleet
from tests.integration.fleet.test_gateway_faults import clean_claims

pytestmark = pytest.mark.integration


def test_a_batch_failing_every_time_ends_poison_after_the_redrives(
    clean_fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = clean_claims(tmp_path / "c.jsonl", 40, seed=31)

    def broken(runs: Any, cache: Any, formulary: Any, run_id: str, batch: range) -> Any:
        if batch.start == 20:  # the second batch: a bug its content triggers, every time
            raise ZeroDivisionError("a claim the code cannot handle")
        return crosswalk_batch(runs, cache, formulary, run_id, batch)

    monkeypatch.setattr(tasks.crosswalk, "crosswalk_batch", broken)
    fleet = clean_fleet
    quick = fleet.settings.model_copy(update={"stall_seconds": 0.5})  # the sweeper's deadline
    monkeypatch.setattr(fleet, "settings", quick)
    monkeypatch.setattr("config.settings._current", quick)
    plan = open_run(fleet.runs, fleet.db, context.crosswalk(), fleet.settings,
                    [str(tmp_path / "c.jsonl")], 20, new=True)  # fmt: skip
    fleet.producer(plan.run_id, 20).produce([str(tmp_path / "c.jsonl")])
    sweeps = 0
    while not progress(fleet.runs, fleet.db, plan.run_id).finished:
        assert sweeps <= fleet.settings.max_deliveries + 2, "re-driven for ever"
        time.sleep(1.0)
        tasks.sweep.sweep()  # the beat's task, called as beat would have it run
        sweeps += 1
    rows = {r["claim_id"]: r for r in fleet.results(plan.run_id)}
    assert sorted(rows) == sorted(ids)  # every claim once
    assert {rows[i]["reason"] for i in ids[20:]} == {"POISON"}
    assert all(rows[i]["status"] == "PAID" for i in ids[:20])
    letters = fleet.db.dead_letters(plan.run_id)[0]
    assert sorted(d["claim_id"] for d in letters if d["reason"] == "POISON") == sorted(ids[20:])
