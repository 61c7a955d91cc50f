"""The chain: intake → crosswalk → submit → record, one per batch.

Every link takes the same immutable arguments (run id, first sequence number,
count): the claims themselves stay in Redis, so broker messages carry no claim
and no PHI, and Flower shows only ids and numbers. Links are named, not
imported: Celery names a task after its module and function (``tasks.<link>.<link>``).

Validation is the intake link's last step and routing by the reject matrix the record
link's first (``rxfleet.links.validate``, ``rxfleet.links.route``), not links of their
own: a pure step on records in hand needs no hop through Redis and the broker.

Depth first: on a Redis broker a cpu worker takes a batch's later links (crosswalk,
record: priority 0) before another batch's intake (6), so the first claims of a run
reach the gateway while later slices are still being read, instead of after every
slice in the window has been read and validated (kombu's Redis transport serves
priority 0 first; RabbitMQ ignores priorities on a queue declared without
``x-max-priority``, as ours are).
"""

from __future__ import annotations

from celery import chain
from celery.result import AsyncResult

from workers.app import app

_NAMES = ("intake", "crosswalk", "submit", "record")
LINKS: tuple[str, ...] = tuple(f"tasks.{link}.{link}" for link in _NAMES)
#: Each link's priority on a Redis broker (lower first; absent: 0).
PRIORITY = {"tasks.intake.intake": 6}


def batch_chain(run_id: str, first: int, count: int) -> chain:
    args = (run_id, first, count)
    return chain(*(app.signature(name, args=args, immutable=True,
                                 priority=PRIORITY.get(name, 0)) for name in LINKS))  # fmt: skip


def send_batch(run_id: str, first: int, count: int) -> AsyncResult:  # type: ignore[type-arg]
    return batch_chain(run_id, first, count).apply_async()
