"""Link 5: record. Each result exactly once; retries when Redis is not there."""

from __future__ import annotations

from typing import Any

from celery import Task
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rxfleet.links.record import record_batch
from tasks import context
from workers.app import app


@app.task(
    bind=True,
    name="tasks.record.record_batch",
    autoretry_for=(RedisConnectionError, RedisTimeoutError),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=20,
)
def record(self: Task, run_id: str, first: int, count: int) -> dict[str, Any]:  # type: ignore[type-arg]
    trace = f"{run_id}/{first}"
    return record_batch(context.runs(), run_id, context.batch(first, count), trace).as_dict()
