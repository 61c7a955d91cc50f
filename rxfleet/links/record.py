"""record: each claim's result exactly once, in the run's results, with its audit event."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from rxfleet.claims.rejects import Route
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links import LinkReport
from rxfleet.stores.runs import RunStore

log = logging.getLogger("rxfleet.record")

#: Routes whose claims go to the dead-letter stream for a person or a replay.
DEAD_LETTER_ROUTES = {
    Route.DEAD_LETTER,
    Route.HOST_ERROR,
    Route.RETRY_LATER,
    Route.REVIEW_REQUIRED,
}


def record_batch(runs: RunStore, run_id: str, seqs: Sequence[int], trace: str) -> LinkReport:
    report = LinkReport(run_id, "record")
    records = runs.load(run_id, seqs)
    ready = [r for r in records if r.stage == Stage.ROUTED]
    if len(ready) != len(seqs):
        log.error("run %s: %d of %d claims not routed", run_id, len(seqs) - len(ready), len(seqs))
    report.done = runs.record(run_id, ready, trace, lambda r: dlq_entry(run_id, r))
    report.skipped = len(ready) - report.done
    return report


def dlq_entry(run_id: str, record: WorkRecord) -> dict[str, Any] | None:
    """What a person needs to find and fix a dead-lettered claim; None for the others."""
    if record.route not in DEAD_LETTER_ROUTES:
        return None
    return {
        "run_id": run_id,
        "seq": record.seq,
        "claim_id": record.claim_id,
        "source": record.source,
        "line": record.line,
        "status": record.status,
        "route": record.route,
        "reject_codes": record.reject_codes,
        "issues": [issue.model_dump() for issue in record.issues],
        "at": time.time(),
    }
