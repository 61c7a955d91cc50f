"""Link 3: submit. The gateway link, on its own queue, with its own retry policy.

Retry policy: the body decides (see ``rxfleet.links.submit``): countdown not
before Retry-After, else exponential backoff with full jitter, capped below the
broker's visibility timeout. ``failures`` counts rounds that failed without
progress (a fleet pause or an open breaker is a deferral, not a failure); when
they reach ``submit_max_retries`` the gateway is taken as down and the open
claims are rejected 99. Each claim also has its own limit of failed tries.
Redis outages retry by ``autoretry_for``.
"""

from __future__ import annotations

from typing import Any

from celery import Task

from config import get_settings
from rxfleet import context
from rxfleet.gateway.client import GatewayClient
from rxfleet.links.submit import SubmitContext, submit_batch
from rxfleet.phikeys import vault
from workers.app import app
from workers.base import OUTAGE_BACKOFF, REDIS_OUTAGE

_client: GatewayClient | None = None


def gateway_client() -> GatewayClient:
    """One gateway client (one requests.Session) per worker process."""
    global _client
    if _client is None:
        _client = GatewayClient(get_settings())
    return _client


def forget_gateway_client() -> None:
    global _client
    _client = None


def submit_context() -> SubmitContext:
    settings = get_settings()
    return SubmitContext(
        runs=context.runs(),
        tokens=context.tokens(),
        gateway=gateway_client(),
        vault=vault(settings),
        settings=settings,
        breaker=context.breaker(),
    )


@app.task(
    bind=True,
    name="tasks.submit.submit_batch",
    autoretry_for=REDIS_OUTAGE,
    max_retries=None,
    **OUTAGE_BACKOFF,
)
def submit(self: Task, run_id: str, first: int, count: int, failures: int = 0) -> dict[str, Any]:  # type: ignore[type-arg]
    final = failures >= get_settings().submit_max_retries
    seqs = context.batch(first, count)
    report = submit_batch(submit_context(), run_id, seqs, failures=failures, final=final)
    if report.retry_in is not None:
        # A deferral (pause, breaker) is not a failure; a round with progress resets the count.
        streak = failures if report.deferred else (1 if report.done else failures + 1)
        kwargs = {"failures": streak}
        raise self.retry(args=(run_id, first, count), kwargs=kwargs, countdown=report.retry_in)
    return report.as_dict()
