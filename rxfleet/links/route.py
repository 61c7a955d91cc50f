"""route: the gateway's answer to a status and a routing state, by the reject matrix."""

from __future__ import annotations

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.model import is_reversal
from rxfleet.claims.rejects import (
    CLEAN,
    Reason,
    RejectMatrix,
    Status,
    normalize_codes,
)
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links import LinkReport, open_records
from rxfleet.stores.runs import RunStore


def route_batch(runs: RunStore, run_id: str, batch: range, rejects: RejectMatrix) -> LinkReport:
    report = LinkReport(run_id, "route")
    todo = open_records(runs, run_id, batch, Stage.SENT, report)
    for record in todo:
        route_record(record, rejects)
        record.trail(AuditStage.ROUTED, outcome=record.route, matrix=rejects.version)
    runs.save(run_id, todo, batch)
    report.done = len(todo)
    return report


def route_record(record: WorkRecord, rejects: RejectMatrix) -> None:
    """Status and route from the answer: 511-FB codes first, then 112-AN.

    A claim that carries reject codes (trimmed; blanks are no code) is REJECTED and
    routed by its codes whatever its status letter (a ``P`` with codes is worked,
    never ``CLEAN``). Without codes the matrix's 112-AN table decides: a ``D``
    (duplicate of paid) is the payer saying it already paid this claim: PAID, the
    exactly-once answer. A reversal (``B2``) accepted (``A``, no codes) is REVERSED,
    reason PAYER; refused (``R 87``) it is routed by its codes like any reject. The
    fleet's own rejects keep their reason.
    """
    record.reject_codes = normalize_codes(record.reject_codes)
    outcome = rejects.outcome_for(record.response_status or "R")
    claim = record.claim or {}
    if outcome.status is Status.PAID and not record.reject_codes:
        reversal = is_reversal(claim) and record.response_status == "A"
        record.status, record.route = Status.REVERSED if reversal else Status.PAID, CLEAN
        record.reason = Reason.PAYER if reversal else record.reason
    else:
        plan = claim.get("plan_id")
        record.status = Status.REJECTED
        by_codes = rejects.route_for(record.reject_codes, plan) if record.reject_codes else None
        record.route = by_codes or outcome.route or rejects.default_route
    record.reason = record.reason or Reason.PAYER  # the payer's own answer, paid or not
    record.stage = Stage.ROUTED
