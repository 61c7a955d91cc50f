"""A poison batch's open claims: how each one ends."""

from __future__ import annotations

from rxfleet.claims.rejects import Route, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links.poison import POISON, end_poisoned


def _record(stage: Stage, response: str | None = None) -> WorkRecord:
    record = WorkRecord(seq=0, source="f.jsonl", line=1, claim_id="C0", stage=stage)
    record.response_status = response
    return record


def test_a_claim_never_sent_ends_99_poison_in_the_dead_letters() -> None:
    record = _record(Stage.MAPPED)
    end_poisoned(record, "tasks.submit.submit")
    assert (record.status, record.route, record.reason) == (Status.REJECTED, Route.HOST_ERROR,
                                                            POISON)  # fmt: skip
    assert record.reject_codes == ["99"] and record.stage == Stage.ROUTED
    assert record.events[-1]["stage"] == POISON
    assert record.events[-1]["link"] == "tasks.submit.submit"


def test_a_claim_the_gateway_answered_keeps_its_answer_for_review() -> None:
    record = _record(Stage.SENT, "P")
    end_poisoned(record, "tasks.record.record")
    assert (record.status, record.route, record.reason) == (Status.PAID, Route.REVIEW_REQUIRED,
                                                            POISON)  # fmt: skip
    assert record.reject_codes == []
