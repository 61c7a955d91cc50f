"""Link 4: record. Routes the answered claims by the versioned reject matrix (a pure
step, in memory), then each result and audit trail into the database exactly once;
then the claims leave Redis. Retries when Redis or the database is away; never for a value
the database refuses (``ValueRefused``: the link ends that claim UNRECORDABLE instead)."""

from __future__ import annotations

from typing import Any

from rxfleet import context
from rxfleet.errors import InfrastructureError
from rxfleet.links.record import record_batch
from rxfleet.stores.connection import REDIS_OUTAGE
from workers.app import app
from workers.base import REDIS_OUTAGE_BACKOFF


@app.task(
    autoretry_for=(*REDIS_OUTAGE, InfrastructureError), max_retries=None, **REDIS_OUTAGE_BACKOFF
)
def record(run_id: str, first: int, count: int) -> dict[str, Any]:
    trace = f"{run_id}/{first}"
    batch = context.batch(first, count)
    metrics = context.metrics().key
    return record_batch(context.runs(), context.database(), run_id, batch, trace, context.rejects(),
                        metrics, context.order()).as_dict()  # fmt: skip
