"""The plain functions behind each chain link. Celery-free: tests call them directly.

Each takes the stores it needs, a run id and the batch (a range of sequence
numbers), touches only the records at the stage before its own (the ledger: the
record link takes the answered ones and routes them first), adds a step to each
claim's audit trail, writes the batch back in one round trip (the record link
writes it to the database and drops it from Redis instead), and returns a small
report of counts (the task's result: no claims, no PHI).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.stores.runs import RunStore


@dataclass
class LinkReport:
    run_id: str
    link: str
    done: int = 0
    skipped: int = 0
    quarantined: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_records(
    runs: RunStore, run_id: str, batch: range, stage: Stage, report: LinkReport
) -> list[WorkRecord]:
    """The batch's records waiting at ``stage`` (the ledger); the rest count as skipped."""
    records = runs.load(run_id, batch)
    todo = [r for r in records if r.stage == stage]
    report.skipped = len(batch) - len(todo)
    return todo


def codes(record: WorkRecord) -> list[str]:
    return [issue.code for issue in record.issues]
