from __future__ import annotations

from rxfleet.claims.rejects import Route, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.stores.deadletters import DeadLetters
from rxfleet.stores.runs import RunStore


def _routed(seq: int, route: Route = Route.CLEAN, status: Status = Status.PAID) -> WorkRecord:
    record = WorkRecord(seq=seq, source="f.jsonl", line=seq + 1, claim_id=f"C{seq}")
    record.stage, record.route, record.status = Stage.ROUTED, route, status
    return record


def test_each_result_is_recorded_exactly_once(runs: RunStore) -> None:
    records = [_routed(0), _routed(1, Route.DEAD_LETTER, Status.QUARANTINED)]
    dead = lambda r: {"run_id": "R", "claim": r.claim_id} if r.route == Route.DEAD_LETTER else None  # noqa: E731
    assert runs.record("R", records, "trace", dead) == 2
    assert runs.record("R", records, "trace", dead) == 0  # a redelivered record link
    assert runs.counts("R") == {"PAID": 1, "QUARANTINED": 1}
    assert len(runs.audit_events("R")) == 2
    assert len(list(DeadLetters(runs.client, runs.prefix).entries("R"))) == 1


def test_results_come_back_in_input_order(runs: RunStore) -> None:
    runs.record("R", [_routed(2), _routed(0), _routed(1)], "t", lambda r: None)
    runs.set_meta("R", total=3)
    assert [r["claim_id"] for r in runs.results("R", 3, chunk=2)] == ["C0", "C1", "C2"]
    assert runs.progress("R") == (3, 3)


def test_first_sightings_flag_repeats(runs: RunStore) -> None:
    assert runs.first_sightings("R", ["A", "B", "A", None]) == [True, True, False, True]
    assert runs.first_sightings("R", ["B"]) == [False]


def test_work_records_round_trip(runs: RunStore) -> None:
    record = WorkRecord(seq=5, source="f", line=6, claim_id="X", fields={"bin": "610014"})
    runs.add("R", [record], {5: "sealed"})
    (loaded,) = runs.load("R", [5])
    assert loaded == record and runs.sealed_phi("R", 5) == "sealed"
    assert loaded.fields == {"bin": "610014"}


def test_loading_no_records_asks_redis_nothing(runs: RunStore) -> None:
    assert runs.load("R", []) == []
