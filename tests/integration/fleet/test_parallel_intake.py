"""Parallel intake: the producer ships sealed slices of a JSONL file and the intake
link ingests them in any cpu worker. Against the real Redis and database of the
test fleet; chains are collected here instead of sent, so the test decides in what
order the slices are taken, as racing workers might."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rxfleet import context
from rxfleet.claims.phi import PhiTokenizer
from rxfleet.claims.rejects import RejectMatrix
from rxfleet.claims.work import Stage
from rxfleet.formats.payer_sheet import load_payer_sheet
from rxfleet.formats.x12 import load_payer_routes
from rxfleet.lifecycle import open_run
from rxfleet.links.ingest import Ingest
from rxfleet.links.intake import intake_batch
from rxfleet.links.poison import UNREAD_SLICE, dead_letter_batch
from rxfleet.links.sweep import redrive_or_give_up
from rxfleet.links.validate import Checks
from rxfleet.producer import Producer
from tests.integration.fleet.fleet_support import SAMPLE, Fleet
from tests.integration.fleet.sample_facts import distinctive_phi, read_sample
from tests.integration.fleet.test_gateway_faults import clean_claims
from tests.phi_scan import dump_values, leaks

pytestmark = pytest.mark.integration


def _ship(fleet: Fleet, path: Path, batch_size: int) -> tuple[str, list[tuple[int, int]]]:
    """A fresh run of ``path``, shipped as slices; the batches (first, count) it sent."""
    plan = open_run(fleet.runs, fleet.db, context.crosswalk(), fleet.settings, [str(path)],
                    batch_size, new=True)  # fmt: skip
    sent: list[tuple[int, int]] = []
    holder = f"test-{plan.run_id}"
    assert fleet.runs.claim_producer(plan.run_id, holder, 15)
    producer = Producer(
        runs=fleet.runs, db=fleet.db, ingest=context.ingest(plan.run_id),
        send=lambda run_id, first, count: sent.append((first, count)),
        payer_routes=load_payer_routes(fleet.settings.payer_routes),
        payer_sheet=load_payer_sheet(fleet.settings.payer_sheet),
        batch_size=batch_size, max_inflight=10_000, holder=holder, slices=True,
        order=context.order(),
    )  # fmt: skip
    result = producer.produce([str(path)])
    assert result.total == sum(count for _, count in sent)
    return plan.run_id, sent


def _intake(run_id: str, first: int, wait: float = 0.0) -> dict[str, Any]:
    return intake_batch(context.runs(), context.ingest(run_id), context.order(), first,
                        turn_wait=wait).as_dict()  # fmt: skip


def _claims(tmp_path: Path, ids: list[str]) -> Path:
    """A file of these claim ids, made unique to the test (its claims are never sent: none
    may wait ahead of another test's in a claim id's order)."""
    path = tmp_path / "claims.jsonl"
    claims = [{"claim_id": f"{tmp_path.name}-{c}", "ndc": "00071015523",
               "cardholder_id": f"ZQ{i:07d}"} for i, c in enumerate(ids)]  # fmt: skip
    lines = [json.dumps(claim) for claim in claims]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_slices_wait_their_turn_and_a_duplicate_is_the_later_one(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    path = _claims(tmp_path, ["A", "B", "C", "D", "A", "E"])  # A again at seq 4, slice 2
    run_id, sent = _ship(clean_fleet, path, batch_size=2)
    assert sent == [(0, 2), (2, 2), (4, 2)]
    assert clean_fleet.runs.in_flight(run_id) == 6  # shipped claims count before intake
    assert _intake(run_id, 4)["waiting"]  # its turn comes after slices 0 and 2
    assert _intake(run_id, 2)["waiting"]
    assert _intake(run_id, 0)["ingested"] == 2
    assert _intake(run_id, 2)["ingested"] == 2
    late = _intake(run_id, 4)
    assert late["ingested"] == 2 and late["quarantined"] == 1
    works = clean_fleet.runs.load(run_id, range(6))
    assert [w.seq for w in works if w.quarantined] == [4]
    assert [i.code for i in works[4].issues] == ["DUPLICATE_CLAIM_ID"]
    assert [w.line for w in works] == [1, 2, 3, 4, 5, 6]
    assert clean_fleet.runs.in_flight(run_id) == 6  # now as records
    assert _intake(run_id, 0) == {**_intake(run_id, 0), "ingested": 0}  # admitted once
    assert clean_fleet.runs.in_flight(run_id) == 6


def test_a_slice_is_validated_before_it_is_written_and_a_duplicate_keeps_its_own_code(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    path = tmp_path / "c.jsonl"
    clean_claims(path, 3, seed=47)
    first, second, third = path.read_text().splitlines()
    broken = {**json.loads(second), "ndc": "123"}
    path.write_text("\n".join([first, json.dumps(broken), third, first]) + "\n")  # 3 repeats 0
    run_id, _ = _ship(clean_fleet, path, batch_size=4)
    report = intake_batch(clean_fleet.runs, context.ingest(run_id), context.order(), 0,
                          checks=Checks()).as_dict()  # fmt: skip
    assert (report["ingested"], report["quarantined"]) == (4, 2)
    works = clean_fleet.runs.load(run_id, range(4))
    assert [w.stage for w in works] == [
        Stage.VALIDATED,
        Stage.ROUTED,
        Stage.VALIDATED,
        Stage.ROUTED,
    ]
    assert [[e["stage"] for e in w.events] for w in works] == [
        ["ingested", "validated"], ["ingested", "validated"], ["ingested", "validated"],
        ["ingested"],
    ]  # fmt: skip
    assert works[0].claim is not None and works[0].ndc11 is not None
    assert "ERR_INVALID_NDC_FORMAT" in [i.code for i in works[1].issues]
    assert [i.code for i in works[3].issues] == ["DUPLICATE_CLAIM_ID"]  # never validated
    assert works[3].events[0]["codes"] == ["DUPLICATE_CLAIM_ID"]


def test_a_takeover_pass_lets_an_old_slice_in_once_it_got_there(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    path = _claims(tmp_path, ["A", "B", "C", "D"])
    run_id, _ = _ship(clean_fleet, path, batch_size=2)
    runs = clean_fleet.runs
    runs.start_pass(run_id, "resumer")  # another producer took the run over
    assert _intake(run_id, 0)["waiting"]  # even the first slice: the new pass leads now
    runs.passed(run_id, "resumer", 0)
    assert _intake(run_id, 0)["ingested"] == 2
    assert _intake(run_id, 2)["waiting"]
    runs.passed(run_id, "resumer", 2)
    assert _intake(run_id, 2)["ingested"] == 2


def test_shipped_slices_hold_no_raw_phi(clean_fleet: Fleet, tmp_path: Path) -> None:
    phi = distinctive_phi(read_sample(SAMPLE))
    copy = tmp_path / "sample.jsonl"  # other claim ids: this run's claims are never sent,
    copy.write_text(SAMPLE.read_text().replace('"RX', '"PHI-RX'))  # none waits ahead of others
    run_id, sent = _ship(clean_fleet, copy, batch_size=250)
    assert len(sent) == 4 and clean_fleet.runs.shipped(run_id, 0)  # sealed, waiting
    assert leaks(dump_values(clean_fleet.client), phi) == set()
    for first, _ in sent:
        assert _intake(run_id, first, wait=5.0)["ingested"] > 0
    assert leaks(dump_values(clean_fleet.client), phi) == set()


def test_a_sliced_run_ends_as_a_run_read_by_the_producer(clean_fleet: Fleet) -> None:
    keep = ("claim_id", "status", "errors", "reject_codes", "route", "patient_token", "source")

    def rows(slices: bool) -> list[tuple[Any, ...]]:
        clean_fleet.settings.intake_slices = slices
        try:
            result = clean_fleet.run(SAMPLE, batch_size=100)
        finally:
            clean_fleet.settings.intake_slices = True
        return sorted(tuple(str(r[k]) for k in keep) for r in clean_fleet.results(result.run_id))

    sliced, read_here = rows(True), rows(False)
    assert len(sliced) == read_sample(SAMPLE).lines
    assert sliced == read_here


def test_a_slice_given_up_as_poison_still_ends_every_claim(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    """The sweeper (or the base task) gives up a batch whose intake kept failing: its
    claims end as poison, one result each, and the run finishes."""
    path = _claims(tmp_path, ["A", "B", "C"])
    run_id, sent = _ship(clean_fleet, path, batch_size=3)
    assert sent == [(0, 3)]
    report = dead_letter_batch(clean_fleet.runs, clean_fleet.db, run_id, range(3), "test", "t")
    rows = clean_fleet.results(run_id)
    assert len(rows) == 3 and report.done == 3
    assert {(r["reason"], r["source"]) for r in rows} == {("POISON", f"{UNREAD_SLICE}:0")}
    assert clean_fleet.runs.shipped(run_id, 0) is None and clean_fleet.runs.in_flight(run_id) == 0


def test_a_record_link_given_up_routes_what_was_answered_and_ends_the_rest_as_poison(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    """Routing is the record link's first step: given up after the answers came, the
    answered claims keep the route the matrix gives them, not a poison review."""
    run_id, _ = _ship(clean_fleet, _claims(tmp_path, ["A", "B", "C"]), batch_size=3)
    assert _intake(run_id, 0)["ingested"] == 3
    works = clean_fleet.runs.load(run_id, range(3))
    for work, (status, codes) in zip(works[:2], (("P", []), ("R", ["75"])), strict=True):
        work.response_status, work.reject_codes = status, codes
        work.sent()
    clean_fleet.runs.save(run_id, works)
    rejects = RejectMatrix.load(clean_fleet.settings.reject_matrix)
    dead_letter_batch(clean_fleet.runs, clean_fleet.db, run_id, range(3), "tasks.record.record",
                      "t", rejects)  # fmt: skip
    rows = sorted(clean_fleet.results(run_id), key=lambda r: str(r["source"]))
    assert [(r["status"], r["route"], r["reason"]) for r in rows] == [
        ("PAID", "CLEAN", "PAYER"),
        ("REJECTED", rejects.route_for(["75"]), "PAYER"),
        ("REJECTED", "HOST_ERROR", "POISON"),
    ]


def test_a_slice_waiting_behind_a_stuck_slice_is_driven_again_never_given_up(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    """Under load a waiting slice's intake may sit in the queue past the sweeper's
    deadline again and again; it waits on input order, not on a fault of its own."""
    run_id, _ = _ship(clean_fleet, _claims(tmp_path, ["A", "B", "C", "D"]), batch_size=2)
    runs, sent = clean_fleet.runs, []

    def drive(first: int) -> object:
        stalled = (run_id, first, 2)
        return redrive_or_give_up(runs, clean_fleet.db, stalled, 1, lambda *a: sent.append(a))

    assert drive(2) is None and drive(2) is None and drive(2) is None  # past 1: slice 0 in the way
    assert sent == [(run_id, 2, 2)] * 3
    assert drive(0) is None  # its first re-drive
    assert drive(0) is not None  # the first slice in the way: given up past the re-drives
    assert drive(2) is not None  # nothing in its way any more: given up as well
    rows = clean_fleet.results(run_id)
    assert len(rows) == 4 and {r["reason"] for r in rows} == {"POISON"}


def test_a_slice_given_up_midway_lets_the_slices_after_it_in(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    path = _claims(tmp_path, ["A", "B", "C", "D", "E", "F"])
    run_id, _ = _ship(clean_fleet, path, batch_size=2)
    assert _intake(run_id, 0)["ingested"] == 2
    assert _intake(run_id, 4)["waiting"]  # slice 2 is still shipped
    dead_letter_batch(clean_fleet.runs, clean_fleet.db, run_id, range(2, 4), "test", "t")
    assert _intake(run_id, 4)["ingested"] == 2  # slice 2 is done (as poison): its turn


def test_a_worker_with_another_phi_key_leaves_the_slice_waiting(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    """Its tokens and Idempotency-Keys would not be the run's: it says so and waits."""
    run_id, _ = _ship(clean_fleet, _claims(tmp_path, ["A"]), batch_size=1)
    mine = context.ingest(run_id)
    other = Ingest(run_id, PhiTokenizer(b"o" * 32), mine.vault)
    report = intake_batch(clean_fleet.runs, other, None, 0, turn_wait=0).as_dict()
    assert report["waiting"] and report["lacks_key"] == f"PHI key id {mine.tokenizer.kid}"
    assert clean_fleet.runs.shipped(run_id, 0) is not None
    assert _intake(run_id, 0)["ingested"] == 1
