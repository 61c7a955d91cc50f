"""The chain: intake → validate → crosswalk → submit → route → record, one per batch.

Every link takes the same immutable arguments (run id, first sequence number,
count): the claims themselves stay in Redis, so broker messages carry no claim
and no PHI, and Flower shows only ids and numbers. Links are named, not
imported: Celery names a task after its module and function (``tasks.<link>.<link>``).
"""

from __future__ import annotations

from celery import chain
from celery.result import AsyncResult

from workers.app import app

_NAMES = ("intake", "validate", "crosswalk", "submit", "route", "record")
LINKS: tuple[str, ...] = tuple(f"tasks.{link}.{link}" for link in _NAMES)


def batch_chain(run_id: str, first: int, count: int) -> chain:
    args = (run_id, first, count)
    return chain(*(app.signature(name, args=args, immutable=True) for name in LINKS))


def send_batch(run_id: str, first: int, count: int) -> AsyncResult:  # type: ignore[type-arg]
    return batch_chain(run_id, first, count).apply_async()
