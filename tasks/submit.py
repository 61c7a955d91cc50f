"""Link 3: submit. The gateway link, on its own queue.

Its retry policy is the link's own (``rxfleet.links.submit.submit_batch``): a
window of requests in flight, countdown not before Retry-After (in hops no
longer than ``RXFLEET_COUNTDOWN_MAX``), else exponential backoff with full
jitter; rounds without progress counted in ``failures`` until the open claims
are rejected 99. This task only carries the link's answer to Celery. Redis
outages retry by ``autoretry_for``.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from rxfleet import context
from rxfleet.errors import BatchDeferred
from rxfleet.links.submit import submit_batch
from rxfleet.stores.connection import REDIS_OUTAGE
from workers.app import app
from workers.base import REDIS_OUTAGE_BACKOFF


@app.task(bind=True, autoretry_for=REDIS_OUTAGE, max_retries=None, **REDIS_OUTAGE_BACKOFF)
def submit(self: Task, run_id: str, first: int, count: int, failures: int = 0) -> dict[str, Any]:  # type: ignore[type-arg]
    ctx = context.submit_context(owner=str(self.request.id))
    report = submit_batch(ctx, run_id, context.batch(first, count), failures=failures)
    if report.retry is not None:
        retry = report.retry
        args, kwargs = (run_id, first, count), {"failures": retry.failures}
        why = BatchDeferred(report.reason or "retry")  # Flower: "Retry in 2s: BatchDeferred(...)"
        raise self.retry(args=args, kwargs=kwargs, countdown=round(retry.countdown, 2),
                         max_retries=None, exc=why)  # fmt: skip
    return report.as_dict()
