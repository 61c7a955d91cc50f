"""crosswalk: NDC-11 to GPI-14 and the formulary pre-checks, against the live formulary.

An NDC's entry is the live formulary's (``rxfleet.stores.formulary``: what the payer's
formulary events set, published by ``rxfleet webhooks``) when it has one, else the
run's pinned crosswalk file's. The formulary is read once per batch, so a batch
after an event's 204 uses it; the version read is in each claim's ``mapped`` step
(``formulary`` in ``detail``; 0: the file alone).

* not covered by the formulary: the pre-check rejects the claim ``70`` (reason
  ``FORMULARY``), never sent;
* in neither, while a formulary event waits behind a gap: TRANSIENT
  (``FORMULARY_PENDING``): the claim stays, the link comes back by countdown and
  re-checks it, until ``RXFLEET_FORMULARY_WAIT_SECONDS`` after its first miss; then
  it is FATAL like any unknown NDC (``MISSING_GPI_MAPPING``).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.crosswalk import CrosswalkEntry
from rxfleet.claims.model import is_reversal
from rxfleet.claims.rejects import FORMULARY_REJECT, Reason
from rxfleet.claims.rules import Severity
from rxfleet.claims.validation import Issue
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.errors import InfrastructureError
from rxfleet.links import LinkReport, codes, open_records
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.formulary import FormularyCache, FormularyView
from rxfleet.stores.metrics import MetricsStore
from rxfleet.stores.runs import RunStore

#: The longest countdown before a waiting batch is re-checked, seconds.
WAIT_HOP = 2.0


@dataclass
class Formulary:
    """The live formulary, how long a claim may wait for it, and where waits are counted."""

    cache: FormularyCache
    wait_seconds: float
    metrics: MetricsStore | None = None


@dataclass
class CrosswalkReport(LinkReport):
    waiting: int = 0
    countdown: float | None = None  # come back in this many seconds: claims wait
    waits: Counter[str] = field(default_factory=Counter)


def crosswalk_batch(
    runs: RunStore, cache: CrosswalkCache, formulary: Formulary, run_id: str, batch: range
) -> CrosswalkReport:
    report = CrosswalkReport(run_id, "crosswalk")
    todo = open_records(runs, run_id, batch, Stage.VALIDATED, report)
    ndcs = [r.ndc11 or "" for r in todo]
    filed = _lookup(runs, cache, run_id, ndcs)
    view = formulary.cache.lookup(ndcs) if todo else FormularyView(0, None, [])
    now = time.time()
    for record, file_entry, live in zip(todo, filed, view.entries, strict=True):
        entry = live or file_entry
        if entry is None and _waits(record, view, now, formulary.wait_seconds, report):
            continue
        _check(record, entry, view.version, report)
    runs.save(run_id, todo, batch)
    if report.waiting:
        report.countdown = WAIT_HOP
    if report.waits and formulary.metrics is not None:
        formulary.metrics.add({f"formulary_waits|{k}": n for k, n in report.waits.items()})
    return report


def _check(record: WorkRecord, entry: CrosswalkEntry | None, version: int,
           report: CrosswalkReport) -> None:  # fmt: skip
    if record.waiting_since is not None:
        report.waits["mapped" if entry is not None else "expired"] += 1
        record.waiting_since = None
    map_record(record, entry)
    record.trail(AuditStage.MAPPED, codes=codes(record), gpi=record.gpi, formulary=version)
    precheck(record, entry)
    report.quarantined += record.quarantined
    report.done += 1


def _waits(
    record: WorkRecord, view: FormularyView, now: float, limit: float, report: CrosswalkReport
) -> bool:
    """True when ``record`` waits for a pending formulary update (TRANSIENT)."""
    if view.waiting_since is None or is_reversal(record.claim or {}):
        return False
    if record.waiting_since is None:
        record.waiting_since = now
        report.waits["waiting"] += 1
        record.trail(AuditStage.WAITING, codes=["FORMULARY_PENDING"],
                     outcome=Severity.TRANSIENT.value, formulary=view.version)  # fmt: skip
    if now - record.waiting_since >= limit:
        return False
    report.waiting += 1
    return True


def _lookup(
    runs: RunStore, cache: CrosswalkCache, run_id: str, ndcs: list[str]
) -> list[CrosswalkEntry | None]:
    if not ndcs:
        return []
    version = runs.meta(run_id).get("crosswalk")
    if not version or not cache.ready(version):
        raise InfrastructureError(f"crosswalk version {version} is not loaded")
    return cache.lookup(version, ndcs)


def map_record(record: WorkRecord, entry: CrosswalkEntry | None) -> None:
    """Attach the GPI and the formulary pre-check flags; quarantine on a miss.

    A reversal (``B2``) passes through: it carries no drug to check."""
    if is_reversal(record.claim or {}):
        record.stage = Stage.MAPPED
        return
    if entry is None:
        record.add_issues([Issue.of("MISSING_GPI_MAPPING")])
        record.quarantine()
        return
    record.gpi = entry.gpi14
    quantity = (record.claim or {}).get("quantity_dispensed")
    flags = entry.flags(Decimal(str(quantity)) if quantity is not None else None)
    record.add_issues([Issue.of(code) for code in flags])
    record.stage = Stage.MAPPED


def precheck(record: WorkRecord, entry: CrosswalkEntry | None) -> None:
    """A mapped claim the formulary does not cover: rejected ``70`` here, never sent."""
    covered = entry is None or entry.covered
    if record.stage is Stage.MAPPED and not covered and not is_reversal(record.claim or {}):
        record.reject(FORMULARY_REJECT, Reason.FORMULARY)
