"""Link 5: record. Each result exactly once; retries when Redis is not there."""

from __future__ import annotations

from typing import Any

from celery import Task

from rxfleet import context
from rxfleet.links.record import record_batch
from workers.app import app
from workers.base import OUTAGE_BACKOFF, REDIS_OUTAGE


@app.task(
    bind=True,
    name="tasks.record.record_batch",
    autoretry_for=REDIS_OUTAGE,
    max_retries=20,
    **OUTAGE_BACKOFF,
)
def record(self: Task, run_id: str, first: int, count: int) -> dict[str, Any]:  # type: ignore[type-arg]
    trace = f"{run_id}/{first}"
    return record_batch(context.runs(), run_id, context.batch(first, count), trace).as_dict()
