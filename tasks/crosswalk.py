"""Link 2: crosswalk. Reads Redis: retries when Redis or the crosswalk is not there."""

from __future__ import annotations

from typing import Any

from rxfleet import context
from rxfleet.errors import InfrastructureError
from rxfleet.links.crosswalk import crosswalk_batch
from rxfleet.stores.connection import REDIS_OUTAGE
from workers.app import app
from workers.base import REDIS_OUTAGE_BACKOFF


@app.task(
    autoretry_for=(*REDIS_OUTAGE, InfrastructureError), max_retries=10, **REDIS_OUTAGE_BACKOFF
)
def crosswalk(run_id: str, first: int, count: int) -> dict[str, Any]:
    seqs = context.batch(first, count)
    return crosswalk_batch(context.runs(), context.crosswalk(), run_id, seqs).as_dict()
