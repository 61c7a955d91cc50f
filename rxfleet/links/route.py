"""route: the gateway's answer to a status and a routing state, by the reject matrix."""

from __future__ import annotations

from rxfleet.claims.rejects import CLEAN, Reason, RejectMatrix, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links import LinkReport, open_records
from rxfleet.stores.runs import RunStore


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
    """Status and route from the answer (112-AN by the matrix's table, then 511-FB codes).

    A ``D`` (duplicate of paid) is the payer saying it already paid this claim:
    PAID, the exactly-once answer. The fleet's own rejects keep their reason.
    """
    outcome = rejects.outcome_for(record.response_status or "R")
    if outcome.status is Status.PAID and not record.reject_codes:
        record.status, record.route = Status.PAID, CLEAN
    else:
        plan = (record.claim or {}).get("plan_id")
        record.status = Status.REJECTED
        record.route = outcome.route or rejects.route_for(record.reject_codes, plan)
    record.reason = record.reason or (Reason.PAYER if record.status is Status.REJECTED else None)
    record.stage = Stage.ROUTED
