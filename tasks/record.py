"""Link 5: record. Each result exactly once; retries when Redis is not there."""

from __future__ import annotations

from typing import Any

from rxfleet import context
from rxfleet.links.record import record_batch
from workers.app import app
from workers.base import REDIS_OUTAGE, REDIS_OUTAGE_BACKOFF


@app.task(autoretry_for=REDIS_OUTAGE, max_retries=20, **REDIS_OUTAGE_BACKOFF)
def record(run_id: str, first: int, count: int) -> dict[str, Any]:
    trace = f"{run_id}/{first}"
    return record_batch(context.runs(), run_id, context.batch(first, count), trace).as_dict()
