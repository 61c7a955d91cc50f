"""route: the gateway's answer to a status and a routing state, by the reject matrix."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

from rxfleet.claims.rejects import CLEAN, RejectMatrix, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links import LinkReport, open_records, stage_event
from rxfleet.stores.runs import RunStore

PAID_STATUSES = {"P", "D"}  # D: duplicate of paid, the paid response again


@cache
def matrix(path: Path) -> RejectMatrix:
    return RejectMatrix.load(path)


def route_batch(
    runs: RunStore, run_id: str, seqs: Sequence[int], rejects: RejectMatrix
) -> LinkReport:
    report = LinkReport(run_id, "route")
    todo = open_records(runs, run_id, seqs, Stage.SENT, report)
    for record in todo:
        route_record(record, rejects)
    runs.save(run_id, todo)
    events = [stage_event(run_id, r, "routed", route=r.route, matrix=rejects.version) for r in todo]
    runs.audit(run_id, events)
    report.done = len(todo)
    return report


def route_record(record: WorkRecord, rejects: RejectMatrix) -> None:
    if record.response_status in PAID_STATUSES and not record.reject_codes:
        record.status, record.route = Status.PAID, CLEAN
    else:
        plan = (record.claim or {}).get("plan_id")
        record.status = Status.REJECTED
        record.route = rejects.route_for(record.reject_codes, plan)
    record.stage = Stage.ROUTED
