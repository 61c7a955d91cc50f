"""poison: a batch whose link message keeps killing its worker ends in the dead letters.

Celery redelivers a message whose worker died (late acks, reject on worker
loss, the broker's visibility timeout): a link that crashes its process every
time would be delivered for ever and its run would never finish. The base task
counts deliveries of each message; past ``RXFLEET_MAX_DELIVERIES`` it runs this
instead of the link: every claim of the batch not yet routed ends with the
reason ``poison`` (a claim never sent: rejected 99; a claim the gateway already
answered: kept as answered, for review) and the batch is recorded. Exactly once
as ever: the record link's transaction writes nothing twice.

Routing is the record link's first step, so the claims a poisoned record link (or a
batch given up after it) leaves answered are routed by the reject matrix first, as
the record link would have routed them; a claim whose routing itself fails is
ended as poison like the rest.
"""

from __future__ import annotations

import contextlib

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.rejects import HOST_ERROR_REJECT, Reason, RejectMatrix, Route, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links import LinkReport
from rxfleet.links.record import record_batch
from rxfleet.links.route import route_answered
from rxfleet.stores.database import Database
from rxfleet.stores.runs import RunStore

POISON = Reason.POISON


def end_poisoned(record: WorkRecord, link: str) -> None:
    """End one open claim of a poison batch (never resent: a person looks at it)."""
    if record.stage == Stage.SENT:  # answered by the gateway: keep the answer
        paid = record.response_status == "P" and not record.reject_codes
        record.status = Status.PAID if paid else Status.REJECTED
        record.route, record.reason = Route.REVIEW_REQUIRED, POISON
    else:
        record.reject(HOST_ERROR_REJECT, POISON)
        record.status, record.route = Status.REJECTED, Route.HOST_ERROR
    record.stage = Stage.ROUTED
    record.trail(AuditStage.POISON, outcome=record.route, link=link)


def dead_letter_batch(
    runs: RunStore, db: Database, run_id: str, batch: range, link: str, trace: str,
    rejects: RejectMatrix | None = None,
) -> LinkReport:  # fmt: skip
    """End the batch's open claims as poison and record the whole batch; with
    ``rejects``, the answered ones are routed by it first."""
    _stand_in_for_the_slice(runs, run_id, batch)
    records = [r for r in runs.load(run_id, batch) if r.stage != Stage.ROUTED]
    if rejects is not None:
        _route_answered(records, rejects)
    for record in records:
        if record.stage != Stage.ROUTED:
            end_poisoned(record, link)
    runs.save(run_id, records, batch)
    report = record_batch(runs, db, run_id, batch, trace, None)  # every open claim ended above
    report.link = POISON
    return report


def _route_answered(records: list[WorkRecord], rejects: RejectMatrix) -> None:
    for record in records:
        with contextlib.suppress(Exception):  # maybe what kept failing: it ends as poison
            route_answered([record], rejects)


#: Where a claim of a slice that could never be ingested came from, as its results say.
UNREAD_SLICE = "slice never ingested"


def _stand_in_for_the_slice(runs: RunStore, run_id: str, batch: range) -> None:
    """A slice still shipped when its batch is given up (the intake link kept killing
    its worker) is admitted as one record per claim, each then ended as poison: its
    claims are counted, never lost, and the run can finish. Nothing of the slice is
    read (reading it is what failed): no claim id, no line, only its sequence number."""
    if runs.shipped(run_id, batch.start) is None:
        return
    stand_ins = [WorkRecord(seq=seq, source=UNREAD_SLICE, line=0) for seq in batch]
    runs.admit(run_id, "poison", batch.start, stand_ins, {})
