"""The route step's rule: a claim with reject codes routes by its codes, whatever
the status letter of the answer; codes are trimmed first. The record link routes
only what was answered."""

from __future__ import annotations

import pytest

from config.settings import CONFIG_DIR
from rxfleet.claims.audit import AuditStage
from rxfleet.claims.rejects import CLEAN, Reason, RejectMatrix, Route, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links.route import route_answered, route_record

MATRIX = RejectMatrix.load(CONFIG_DIR / "reject_codes.json")


def _answered(status: str, codes: list[str], plan: str = "PLAN-COMM") -> WorkRecord:
    record = WorkRecord(seq=0, source="f", line=1, claim={"plan_id": plan})
    record.response_status, record.reject_codes = status, codes
    return record


@pytest.mark.parametrize("status", ["P", "A", "C", "D", "F", "R"])
def test_codes_route_whatever_the_status_letter(status: str) -> None:
    record = _answered(status, ["75"])
    route_record(record, MATRIX)
    assert record.status is Status.REJECTED
    assert record.route == MATRIX.route_for(["75"]) == Route.PRIOR_AUTH
    assert record.reason == Reason.PAYER


def test_paid_without_codes_is_clean() -> None:
    record = _answered("P", [])
    route_record(record, MATRIX)
    assert (record.status, record.route, record.reason) == (Status.PAID, CLEAN, "PAYER")


def test_blank_codes_are_no_codes() -> None:
    record = _answered("P", [" ", ""])
    route_record(record, MATRIX)
    assert (record.status, record.route, record.reject_codes) == (Status.PAID, CLEAN, [])


def test_padded_code_is_trimmed_and_routed() -> None:
    record = _answered("R", [" 75", "70 "])
    route_record(record, MATRIX)
    assert record.reject_codes == ["75", "70"]
    assert record.route == MATRIX.route_for(["75", "70"])
    assert record.route != Route.REVIEW_REQUIRED


def test_deferred_without_codes_keeps_its_status_route() -> None:
    record = _answered("F", [])
    route_record(record, MATRIX)
    assert (record.status, record.route) == (Status.REJECTED, Route.PRIOR_AUTH)


def test_only_answered_records_are_routed_each_with_its_step() -> None:
    answered, waiting, ended = _answered("P", []), _answered("R", ["75"]), _answered("R", ["70"])
    answered.stage, waiting.stage = Stage.SENT, Stage.MAPPED
    ended.quarantine()
    assert route_answered([answered, waiting, ended], MATRIX) == 1
    assert (answered.stage, answered.route, answered.status) == (Stage.ROUTED, CLEAN, Status.PAID)
    step = answered.events[-1]
    assert (step["stage"], step["outcome"], step["matrix"]) == (
        AuditStage.ROUTED, CLEAN, MATRIX.version
    )  # fmt: skip
    assert (waiting.stage, waiting.route, waiting.events) == (Stage.MAPPED, None, [])
    assert (ended.route, ended.events) == (Route.DEAD_LETTER, [])
