"""route: the gateway's answer to a status and a routing state, by the reject matrix."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from rxfleet.claims.rejects import CLEAN, RejectMatrix, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links import LinkReport, open_records
from rxfleet.stores.runs import RunStore

PAID_STATUSES = {"P", "D"}  # D: duplicate of paid, the paid response again


@cache
def matrix(path: Path) -> RejectMatrix:
    return RejectMatrix.load(path)


def route_batch(runs: RunStore, run_id: str, batch: range, rejects: RejectMatrix) -> LinkReport:
    report = LinkReport(run_id, "route")
    todo = open_records(runs, run_id, batch, Stage.SENT, report)
    for record in todo:
        route_record(record, rejects)
        record.trail("routed", outcome=record.route, matrix=rejects.version)
    runs.save(run_id, todo, batch)
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
