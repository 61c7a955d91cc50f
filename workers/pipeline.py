"""The chain: validate → crosswalk → submit → route → record, one per batch.

Every link takes the same immutable arguments (run id, first sequence number,
count): the claims themselves stay in Redis, so broker messages carry no claim
and no PHI, and Flower shows only ids and numbers.
"""

from __future__ import annotations

from celery import chain
from celery.result import AsyncResult

from tasks.crosswalk import crosswalk
from tasks.record import record
from tasks.route import route
from tasks.submit import submit
from tasks.validate import validate


def batch_chain(run_id: str, first: int, count: int) -> chain:
    args = (run_id, first, count)
    return chain(
        validate.si(*args),
        crosswalk.si(*args),
        submit.si(*args),
        route.si(*args),
        record.si(*args),
    )


def send_batch(run_id: str, first: int, count: int) -> AsyncResult:  # type: ignore[type-arg]
    return batch_chain(run_id, first, count).apply_async()
