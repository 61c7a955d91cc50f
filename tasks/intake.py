"""Link 0: intake. Opens a slice the producer shipped, ingests it (parse, checks, PHI
tokenized and sealed) and validates it; a batch the producer ingested itself is
validated from Redis. Validation is pure: a broken rule is a result, never retried.
Redis going away is retried, like every link; a slice whose turn has not come (the
slice before it is not admitted yet) comes back by countdown."""

from __future__ import annotations

from typing import Any

from celery import Task

from config import get_settings
from rxfleet import context
from rxfleet.claims.plans import load_plan_limits
from rxfleet.links.intake import intake_batch
from rxfleet.links.validate import Checks, validate_batch
from rxfleet.stores.connection import REDIS_OUTAGE
from workers.app import app
from workers.base import REDIS_OUTAGE_BACKOFF

#: Seconds before a slice whose turn has not come is tried again; before one sealed
#: under a vault key this worker lacks is.
TURN_COUNTDOWN_S = 0.5
KEY_WAIT_S = 5.0


@app.task(bind=True, autoretry_for=REDIS_OUTAGE, max_retries=None, **REDIS_OUTAGE_BACKOFF)
def intake(self: Task, run_id: str, first: int, count: int) -> dict[str, Any]:  # type: ignore[type-arg]
    checks = Checks(limits=load_plan_limits(get_settings().plan_limits), metrics=context.metrics())
    report = intake_batch(context.runs(), context.ingest(run_id), context.order(), first,
                          checks=checks)  # fmt: skip
    if report.waiting:  # alive, though it waits: the sweeper leaves the batch be
        context.runs().beat(run_id, first, count)
        countdown = KEY_WAIT_S if report.lacks_key else TURN_COUNTDOWN_S
        raise self.retry(countdown=countdown, max_retries=None)
    if not report.ingested:  # no slice: the producer's records (or a redelivery's)
        validated = validate_batch(context.runs(), run_id, context.batch(first, count), checks)
        report.quarantined = validated.quarantined
    return report.as_dict()
