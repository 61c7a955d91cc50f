"""A second producer of a run: it follows the first, and takes over when the first dies."""

from __future__ import annotations

from typing import Any, cast

from rxfleet.lifecycle import RunPlan
from rxfleet.producer import producer_holder, take_run
from rxfleet.stores.database import Database
from rxfleet.stores.runs import RunStore


class _Runs:
    """The ``runs`` row the takeover reads: the first producer's state and checkpoint."""

    def __init__(self, state: str, produced: int) -> None:
        self.row = {"run_id": "R", "state": state, "produced": produced}

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        return self.row if run_id == "R" else None


def _take(runs: RunStore, state: str, produced: int, said: list[str]) -> RunPlan | None:
    db = cast(Database, _Runs(state, produced))
    return take_run(runs, db, RunPlan("R", 10), "two", 5, said.append)


def test_a_free_run_is_taken_as_planned(runs: RunStore) -> None:
    said: list[str] = []
    assert _take(runs, "producing", 0, said) == RunPlan("R", 10)
    assert said == [] and not runs.claim_producer("R", "one", 5)


def test_a_dead_producer_is_taken_over_from_its_checkpoint(runs: RunStore) -> None:
    assert runs.claim_producer("R", "one", 0.3)  # its lease runs out: it died
    said: list[str] = []
    plan = _take(runs, "producing", 40, said)
    assert plan == RunPlan("R", 10, resumed=True, produced=40)
    assert said[0] == "another producer is enqueueing run R: following it"
    assert "stopped at claim 40: taking over" in said[1]


def test_a_producer_that_finished_is_followed_not_taken_over(runs: RunStore) -> None:
    assert runs.claim_producer("R", "one", 0.3)
    said: list[str] = []
    assert _take(runs, "produced", 100, said) is None
    assert len(said) == 1 and not runs.producing("R")  # the lease is given back


def test_each_holder_is_named_apart() -> None:
    assert producer_holder() != producer_holder()
