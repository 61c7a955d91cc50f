"""Link 3: submit. The gateway link, on its own queue.

Its retry policy is the link's own (``rxfleet.links.submit.submit_batch``):
countdown not before Retry-After, else exponential backoff with full jitter,
capped below the broker's visibility timeout; rounds without progress counted
in ``failures`` until the open claims are rejected 99. This task only carries
the link's answer to Celery. Redis outages retry by ``autoretry_for``.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from rxfleet import context
from rxfleet.links.submit import submit_batch
from workers.app import app
from workers.base import REDIS_OUTAGE, REDIS_OUTAGE_BACKOFF


@app.task(bind=True, autoretry_for=REDIS_OUTAGE, max_retries=None, **REDIS_OUTAGE_BACKOFF)
def submit(self: Task, run_id: str, first: int, count: int, failures: int = 0) -> dict[str, Any]:  # type: ignore[type-arg]
    seqs = context.batch(first, count)
    report = submit_batch(context.submit_context(), run_id, seqs, failures=failures)
    if report.retry is not None:
        kwargs = {"failures": report.retry.failures}
        raise self.retry(
            args=(run_id, first, count), kwargs=kwargs, countdown=report.retry.countdown
        )
    return report.as_dict()
