"""Link 2: crosswalk. Reads Redis: retries when Redis or the crosswalk is not there, and
comes back by countdown while claims wait for a pending formulary update (TRANSIENT)."""

from __future__ import annotations

from typing import Any

from celery import Task

from config import get_settings
from rxfleet import context
from rxfleet.errors import InfrastructureError
from rxfleet.links.crosswalk import Formulary, crosswalk_batch
from rxfleet.stores.connection import REDIS_OUTAGE
from workers.app import app
from workers.base import REDIS_OUTAGE_BACKOFF


@app.task(
    bind=True,
    autoretry_for=(*REDIS_OUTAGE, InfrastructureError),
    max_retries=10,
    **REDIS_OUTAGE_BACKOFF,
)
def crosswalk(self: Task, run_id: str, first: int, count: int) -> dict[str, Any]:  # type: ignore[type-arg]
    seqs = context.batch(first, count)
    report = crosswalk_batch(context.runs(), context.crosswalk(), formulary(), run_id, seqs)
    if report.countdown is not None:  # bounded: each claim waits RXFLEET_FORMULARY_WAIT_SECONDS
        raise self.retry(countdown=report.countdown, max_retries=None)
    return report.as_dict()


def formulary() -> Formulary:
    wait = get_settings().formulary_wait_seconds
    return Formulary(context.formulary(), wait, context.metrics())
