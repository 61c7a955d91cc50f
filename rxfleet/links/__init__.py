"""The plain functions behind each chain link. Celery-free: tests call them directly.

Each takes the run's store, a run id and the batch's sequence numbers, touches
only the records at the stage before its own (the ledger), and returns a small
report of counts (the task's result: no claims, no PHI).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
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


def stage_event(run_id: str, record: WorkRecord, stage: str, **extra: Any) -> dict[str, Any]:
    """An audit event for ``record`` passing ``stage``: ids and codes, never PHI."""
    return {
        "stage": stage,
        "run_id": run_id,
        "seq": record.seq,
        "claim_id": record.claim_id,
        "codes": [issue.code for issue in record.issues],
        "at": time.time(),
        **extra,
    }


def open_records(
    runs: RunStore, run_id: str, seqs: Sequence[int], stage: Stage, report: LinkReport
) -> list[WorkRecord]:
    """The batch's records waiting at ``stage`` (the ledger); the rest count as skipped."""
    records = runs.load(run_id, seqs)
    todo = [r for r in records if r.stage == stage]
    report.skipped = len(records) - len(todo)
    return todo
