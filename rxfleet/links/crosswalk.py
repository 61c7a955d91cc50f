"""crosswalk: NDC-11 to GPI-14 from the run's pinned crosswalk version."""

from __future__ import annotations

from decimal import Decimal

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.crosswalk import CrosswalkEntry
from rxfleet.claims.model import is_reversal
from rxfleet.claims.validation import Issue
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.errors import InfrastructureError
from rxfleet.links import LinkReport, codes, open_records
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.runs import RunStore


def crosswalk_batch(runs: RunStore, cache: CrosswalkCache, run_id: str, batch: range) -> LinkReport:
    report = LinkReport(run_id, "crosswalk")
    todo = open_records(runs, run_id, batch, Stage.VALIDATED, report)
    entries = _lookup(runs, cache, run_id, [r.ndc11 or "" for r in todo])
    for record, entry in zip(todo, entries, strict=True):
        map_record(record, entry)
        record.trail(AuditStage.MAPPED, codes=codes(record), gpi=record.gpi)
        report.quarantined += record.quarantined
    runs.save(run_id, todo, batch)
    report.done = len(todo)
    return report


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
