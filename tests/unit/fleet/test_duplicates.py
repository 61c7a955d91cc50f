"""DUPLICATE_CLAIM_ID: a run carries each claim id once per transaction code
(docs/formats.md 'Duplicates within a run')."""

from __future__ import annotations

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.work import WorkRecord
from rxfleet.links.ingest import mark_duplicates
from rxfleet.stores.runs import RunStore


def _work(seq: int, claim_id: str, code: str | None = None, **fields: str) -> WorkRecord:
    given = {"claim_id": claim_id, **fields}
    if code is not None:
        given["transaction_code"] = code
    work = WorkRecord(seq=seq, source="f", line=seq + 1, claim_id=claim_id, fields=given)
    work.trail(AuditStage.INGESTED, codes=[])
    return work


def _duplicates(works: list[WorkRecord]) -> list[int]:
    return [w.seq for w in works if [i.code for i in w.issues] == ["DUPLICATE_CLAIM_ID"]]


def test_a_reversal_and_a_rebill_after_their_billing_are_no_duplicates(runs: RunStore) -> None:
    works = [_work(0, "C1"), _work(1, "C1", "B2"), _work(2, "C1", "B3")]
    mark_duplicates(runs, "R", works)
    assert _duplicates(works) == [] and not any(w.quarantined for w in works)


def test_a_second_billing_or_reversal_of_a_claim_is_a_duplicate(runs: RunStore) -> None:
    works = [_work(0, "C1"), _work(1, "C1", "B1", ndc="00071015523"), _work(2, "C1", "B2")]
    mark_duplicates(runs, "R", works)
    later = [_work(3, "C1", "B2"), _work(4, "C2", "B2")]  # a later batch of the same run
    mark_duplicates(runs, "R", later)
    assert _duplicates(works) == [1]  # B1 explicit or absent: the same billing
    assert _duplicates(later) == [3] and works[1].quarantined and later[0].quarantined
    assert later[0].events[-1]["codes"] == ["DUPLICATE_CLAIM_ID"]


def test_the_duplicate_id_is_the_claim_id_of_a_billing() -> None:
    assert _work(0, "C1").duplicate_id == "C1" == _work(0, "C1", "B1").duplicate_id
    assert _work(0, "C1", "B2").duplicate_id == "C1/B2"
    assert WorkRecord(seq=0, source="f", line=1).duplicate_id is None
