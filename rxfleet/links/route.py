"""route: the gateway's answer to a status and a routing state, by the reject matrix.

A pure step the record link takes first (``rxfleet.links.record``), on the records
it has just read: as a chain link of its own it read, decoded, encoded and wrote
every work record once more, which cost the cpu workers about a fifth of their
time for a table lookup. A record answered but not recorded stays at ``SENT`` in
Redis and is routed again, the same way, by the record link's next try."""

from __future__ import annotations

from collections.abc import Sequence

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


def route_answered(records: Sequence[WorkRecord], rejects: RejectMatrix) -> int:
    """Route every answered record (``SENT``) of ``records`` in place, each with its
    ``ROUTED`` step in the trail; how many."""
    answered = [record for record in records if record.stage == Stage.SENT]
    for record in answered:
        route_record(record, rejects)
        record.trail(AuditStage.ROUTED, outcome=record.route, matrix=rejects.version)
    return len(answered)


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
