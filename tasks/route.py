"""Link 4: route. Pure: reject codes to routing states by the versioned matrix; only
Redis going away (the records live there) is retried, like every link."""

from __future__ import annotations

from typing import Any

from config import get_settings
from rxfleet import context
from rxfleet.claims.rejects import matrix
from rxfleet.links.route import route_batch
from rxfleet.stores.connection import REDIS_OUTAGE
from workers.app import app
from workers.base import REDIS_OUTAGE_BACKOFF


@app.task(autoretry_for=REDIS_OUTAGE, max_retries=None, **REDIS_OUTAGE_BACKOFF)
def route(run_id: str, first: int, count: int) -> dict[str, Any]:
    rejects = matrix(get_settings().reject_matrix)
    return route_batch(context.runs(), run_id, context.batch(first, count), rejects).as_dict()
