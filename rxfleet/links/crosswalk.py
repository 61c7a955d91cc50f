"""crosswalk: NDC-11 to GPI-14 from the run's pinned crosswalk version in Redis."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path

import redis

from rxfleet.claims.crosswalk import CrosswalkEntry, file_digest, read_crosswalk
from rxfleet.claims.validation import Issue
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.errors import InfrastructureError
from rxfleet.links import LinkReport, open_records, stage_event
from rxfleet.stores.connection import fields
from rxfleet.stores.keys import Keys
from rxfleet.stores.runs import RunStore

_LOAD_CHUNK = 5000


def load_crosswalk(client: redis.Redis, keys: Keys, path: Path) -> str:
    """Load ``path`` into Redis once per content version; returns the version."""
    version = file_digest(path)
    if client.exists(keys.crosswalk_ready(version)):
        return version
    for chunk in _chunks(read_crosswalk(path), _LOAD_CHUNK):
        mapping = {entry.ndc11: json.dumps(entry.to_json()) for entry in chunk}
        client.hset(keys.crosswalk(version), mapping=fields(mapping))
    client.set(keys.crosswalk_ready(version), str(path.name))
    return version


def _chunks(entries: Iterable[CrosswalkEntry], size: int) -> Iterable[list[CrosswalkEntry]]:
    chunk: list[CrosswalkEntry] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def crosswalk_batch(runs: RunStore, run_id: str, seqs: Sequence[int]) -> LinkReport:
    report = LinkReport(run_id, "crosswalk")
    todo = open_records(runs, run_id, seqs, Stage.VALIDATED, report)
    entries = _lookup(runs, run_id, [r.ndc11 or "" for r in todo])
    for record, entry in zip(todo, entries, strict=True):
        map_record(record, entry)
        report.quarantined += record.quarantined
    runs.save(run_id, todo)
    runs.audit(run_id, [stage_event(run_id, r, "mapped", gpi=r.gpi) for r in todo])
    report.done = len(todo)
    return report


def _lookup(runs: RunStore, run_id: str, ndcs: list[str]) -> list[CrosswalkEntry | None]:
    if not ndcs:
        return []
    version = runs.meta(run_id).get("crosswalk")
    if not version or not runs.client.exists(runs.keys.crosswalk_ready(version)):
        raise InfrastructureError(f"crosswalk version {version} is not loaded")
    raw = runs.client.hmget(runs.keys.crosswalk(version), ndcs)
    return [CrosswalkEntry.from_json(json.loads(doc)) if doc else None for doc in raw]


def map_record(record: WorkRecord, entry: CrosswalkEntry | None) -> None:
    """Attach the GPI and the formulary pre-check flags; quarantine on a miss."""
    if entry is None:
        record.add_issues([Issue.of("MISSING_GPI_MAPPING")])
        record.quarantine()
        return
    record.gpi = entry.gpi14
    quantity = (record.claim or {}).get("quantity_dispensed")
    flags = entry.flags(Decimal(str(quantity)) if quantity is not None else None)
    record.add_issues([Issue.of(code) for code in flags])
    record.stage = Stage.MAPPED
