"""validate: schema, NDC-11, the validation taxonomy; FATAL claims are quarantined."""

from __future__ import annotations

import time
from datetime import date

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.ndc import NdcError, normalize_ndc
from rxfleet.claims.plans import NO_LIMITS, PlanLimits
from rxfleet.claims.rules import Severity
from rxfleet.claims.validation import validate
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links import LinkReport, codes, open_records
from rxfleet.stores.metrics import MetricsStore
from rxfleet.stores.runs import RunStore


def validate_batch(
    runs: RunStore,
    run_id: str,
    batch: range,
    today: date | None = None,
    metrics: MetricsStore | None = None,
    limits: PlanLimits = NO_LIMITS,
) -> LinkReport:
    """Validate the batch; each claim's validation time goes to the ``validation``
    histogram (``rxfleet_validation_seconds``) with the batch, in one round trip."""
    report = LinkReport(run_id, "validate")
    todo = open_records(runs, run_id, batch, Stage.INGESTED, report)
    took = []
    for record in todo:
        started = time.perf_counter()
        validate_record(record, today, limits)
        took.append(time.perf_counter() - started)
        record.trail(AuditStage.VALIDATED, codes=codes(record), outcome=record.severity.value)
        report.quarantined += record.quarantined
    runs.save(run_id, todo, batch)
    if metrics is not None and took:
        metrics.observe("validation", took)
    report.done = len(todo)
    return report


def validate_record(
    record: WorkRecord, today: date | None = None, limits: PlanLimits = NO_LIMITS
) -> None:
    """Apply every rule to ``record``; quarantine it when any is FATAL."""
    fields = {**record.fields, "patient_token": record.patient_token}
    outcome = validate(fields, today=today, fmt=record.fmt, limits=limits)
    record.add_issues(outcome.issues)
    record.ndc11 = _ndc11(record.fields.get("ndc"))
    if outcome.claim is None or record.severity is Severity.FATAL:
        record.quarantine()
        return
    record.claim = outcome.claim.model_dump(mode="json")
    record.stage = Stage.VALIDATED


def _ndc11(raw: object) -> str | None:
    try:
        return normalize_ndc(str(raw)) if raw not in (None, "") else None
    except NdcError:
        return None
