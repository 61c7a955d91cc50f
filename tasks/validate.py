"""Link 1: validate. Pure: a broken rule is a result, never retried; only Redis going
away (the records live there) is retried, like every link."""

from __future__ import annotations

from typing import Any

from config import get_settings
from rxfleet import context
from rxfleet.claims.plans import load_plan_limits
from rxfleet.links.validate import validate_batch
from rxfleet.stores.connection import REDIS_OUTAGE
from workers.app import app
from workers.base import REDIS_OUTAGE_BACKOFF


@app.task(autoretry_for=REDIS_OUTAGE, max_retries=None, **REDIS_OUTAGE_BACKOFF)
def validate(run_id: str, first: int, count: int) -> dict[str, Any]:
    seqs = context.batch(first, count)
    limits = load_plan_limits(get_settings().plan_limits)
    report = validate_batch(context.runs(), run_id, seqs, metrics=context.metrics(), limits=limits)
    return report.as_dict()
