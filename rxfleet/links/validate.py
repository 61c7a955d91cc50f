"""validate: schema, NDC-11, the validation taxonomy; FATAL claims are quarantined.

A step of the intake link, not a link of its own: a slice's records are checked in
the worker that parses them, before they are first written (``rxfleet.links.intake``);
a batch the producer ingested itself is checked by the intake link right after
(``validate_batch``). As a chain link of its own it read, decoded, encoded and wrote
every work record once more. Checking is pure (``check_record``): a slice checks
its claims before it waits for its turn, in parallel, and puts each outcome on its
record (``settle``) after the duplicate-id check, which keeps a duplicate's codes
its own, as before.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.ndc import NdcError, normalize_ndc
from rxfleet.claims.plans import NO_LIMITS, PlanLimits
from rxfleet.claims.rules import Severity
from rxfleet.claims.validation import Issue, validate
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links import LinkReport, codes, open_records
from rxfleet.stores.metrics import MetricsStore
from rxfleet.stores.runs import RunStore


@dataclass(frozen=True)
class Checked:
    """A claim's validation, not yet on its record."""

    issues: tuple[Issue, ...]
    claim: dict[str, Any] | None  # the validated claim (JSON); None: none could be made
    ndc11: str | None
    seconds: float  # how long it took (the ``validation`` histogram)


@dataclass(frozen=True)
class Checks:
    """What validating takes (the day, the plans' limits) and the histogram it feeds."""

    today: date | None = None
    limits: PlanLimits = NO_LIMITS
    metrics: MetricsStore | None = None

    def check(self, record: WorkRecord) -> Checked | None:
        """The record's validation; None for a record not waiting for it (quarantined)."""
        if record.stage != Stage.INGESTED:
            return None
        return check_record(record, self.today, self.limits)

    def settle(
        self, records: Sequence[WorkRecord], checked: Sequence[Checked | None]
    ) -> list[float]:
        """Each outcome onto its record still waiting for it, with its step in the trail;
        the seconds each took, for ``observe`` once the records are written."""
        took = []
        for record, outcome in zip(records, checked, strict=True):
            if outcome is None or record.stage != Stage.INGESTED:
                continue  # quarantined meanwhile (a duplicate id): its codes are its own
            apply_checked(record, outcome)
            record.trail(AuditStage.VALIDATED, codes=codes(record), outcome=record.severity.value)
            took.append(outcome.seconds)
        return took

    def observe(self, took: Sequence[float]) -> None:
        """The ``validation`` histogram (one round trip), after the records are written:
        a link retried after a failed write counts its claims once."""
        if self.metrics is not None and took:
            self.metrics.observe("validation", list(took))


def validate_batch(runs: RunStore, run_id: str, batch: range, checks: Checks) -> LinkReport:
    """Validate the batch's records waiting for it (ingested by the producer), in one
    round trip each way."""
    report = LinkReport(run_id, "validate")
    todo = open_records(runs, run_id, batch, Stage.INGESTED, report)
    if todo:
        took = checks.settle(todo, [checks.check(record) for record in todo])
        runs.save(run_id, todo, batch)
        checks.observe(took)
        report.quarantined = sum(record.quarantined for record in todo)
    report.done = len(todo)
    return report


def validate_record(
    record: WorkRecord, today: date | None = None, limits: PlanLimits = NO_LIMITS
) -> None:
    """Apply every rule to ``record``; quarantine it when any is FATAL."""
    apply_checked(record, check_record(record, today, limits))


def check_record(
    record: WorkRecord, today: date | None = None, limits: PlanLimits = NO_LIMITS
) -> Checked:
    started = time.perf_counter()
    fields = {**record.fields, "patient_token": record.patient_token}
    outcome = validate(fields, today=today, fmt=record.fmt, limits=limits)
    claim = None if outcome.claim is None else outcome.claim.model_dump(mode="json")
    ndc11 = _ndc11(record.fields.get("ndc"))
    return Checked(tuple(outcome.issues), claim, ndc11, time.perf_counter() - started)


def apply_checked(record: WorkRecord, checked: Checked) -> None:
    record.add_issues(checked.issues)
    record.ndc11 = checked.ndc11
    if checked.claim is None or record.severity is Severity.FATAL:
        record.quarantine()
        return
    record.claim = checked.claim
    record.stage = Stage.VALIDATED


def _ndc11(raw: object) -> str | None:
    try:
        return normalize_ndc(str(raw)) if raw not in (None, "") else None
    except NdcError:
        return None
