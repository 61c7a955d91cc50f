"""Link 2: crosswalk. Reads Redis: retries when Redis or the crosswalk is not there."""

from __future__ import annotations

from typing import Any

from rxfleet import context
from rxfleet.errors import InfrastructureError
from rxfleet.links.crosswalk import crosswalk_batch
from workers.app import app
from workers.base import OUTAGE_BACKOFF, REDIS_OUTAGE


@app.task(
    name="tasks.crosswalk.crosswalk_batch",
    autoretry_for=(*REDIS_OUTAGE, InfrastructureError),
    max_retries=10,
    **OUTAGE_BACKOFF,
)
def crosswalk(run_id: str, first: int, count: int) -> dict[str, Any]:
    return crosswalk_batch(context.runs(), run_id, context.batch(first, count)).as_dict()
