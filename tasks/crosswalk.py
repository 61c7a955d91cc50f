"""Link 2: crosswalk. Reads Redis: retries when Redis or the crosswalk is not there."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from rxfleet.errors import InfrastructureError
from rxfleet.links.crosswalk import crosswalk_batch
from tasks import context
from workers.app import app


@app.task(
    name="tasks.crosswalk.crosswalk_batch",
    autoretry_for=(RedisConnectionError, RedisTimeoutError, InfrastructureError),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
)
def crosswalk(run_id: str, first: int, count: int) -> dict[str, Any]:
    return crosswalk_batch(context.runs(), run_id, context.batch(first, count)).as_dict()
