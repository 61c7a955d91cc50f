"""The base task of every chain link, and the Redis-outage retry policy the links share."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Task
from celery.exceptions import Reject, TaskPredicate
from celery.worker.request import Request
from kombu.exceptions import OperationalError as KombuOperationalError
from kombu.utils.encoding import safe_repr

from config import get_settings
from rxfleet import context, logs
from rxfleet.errors import LinkFailed
from rxfleet.links.poison import dead_letter_batch
from rxfleet.stores.connection import REDIS_OUTAGE

log = logging.getLogger("rxfleet.task")

# What a link that touches Redis retries on: REDIS_OUTAGE (Redis away, or full).
#: In-process waits of a link that met a Redis outage (``FleetTask._riding_out``).
RIDE_FIRST_WAIT = 0.25
RIDE_LONGEST_WAIT = 2.0
#: How it waits: exponential (2 s, 4 s, ... capped at 60 s) with jitter.
REDIS_OUTAGE_BACKOFF: dict[str, Any] = {
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
}


BROKER_OUTAGE: tuple[type[Exception], ...] = (*REDIS_OUTAGE, KombuOperationalError)


def broker_outage(exc: object) -> bool:
    """Redis away or full, as redis-py raises it, or as kombu wraps it when publishing a
    message (a retry) fails: ``kombu.exceptions.OperationalError``."""
    return isinstance(exc, BROKER_OUTAGE)


class FleetRequest(Request):
    """A retry's event without its traceback: Flower shows why a batch waits (the
    exception, e.g. ``BatchDeferred('gateway asked to wait (Retry-After)')``), and a
    task that then succeeds shows no stale Retry traceback."""

    def on_retry(self, exc_info: Any) -> None:
        if self.task.acks_late:
            self.acknowledge()
        self.send_event("task-retried", exception=safe_repr(exc_info.exception.exc),
                        traceback="")  # fmt: skip


class FleetTask(Task):  # type: ignore[type-arg]
    """Late acks, JSON args (run id and sequence numbers: never claims, never PHI).

    Pure steps (validate in intake, route in record) retry nothing: a deterministic
    failure is a result. Each link declares its own policy for the outside it touches.
    """

    abstract = True
    Request = "workers.base:FleetRequest"
    acks_late = True
    reject_on_worker_lost = True
    # Task arguments are run ids and numbers; still, never echo them into logs/events.
    argsrepr_max = 64

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        get_settings()  # fail fast on broken settings, before any work

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the link with its ids in the log context; no exception text crosses Celery.

        Celery's own control flow (retry, ignore, reject) passes through. Any other
        exception becomes ``LinkFailed``: its class name as the code, the batch's
        ids, and a fingerprint; it is raised outside the ``except`` block, so the
        original is not chained into the result backend, Sentry or a log. The
        log line names the type and the fingerprint, never the message.
        """
        ids = batch_ids(args)
        request = self.request
        with logs.bind(**ids, task_id=request.id, trace_id=request.root_id or request.id):
            try:
                if ids and self._poisoned(ids):
                    return self._dead_letter(ids)
                return self._riding_out(lambda: super(FleetTask, self).__call__(*args, **kwargs))
            except (TaskPredicate, LinkFailed):
                raise
            except Exception as exc:
                failure = LinkFailed(
                    type(exc).__name__,
                    str(ids.get("run_id", "?")),
                    int(ids.get("batch", -1)),
                    int(ids.get("count", 0)),
                    logs.fingerprint(exc),
                )
            log.error("link %s failed: %s (ref %s)", self.name, failure.code, failure.ref)
            raise failure

    def _riding_out(self, call: Callable[[], Any]) -> Any:
        """The link, run again in this process while Redis is away or full, for up to half
        its soft time limit. Celery's own retry needs Redis to queue the retry; when it
        cannot, it rejects the message for good (``Reject``, no requeue), and the batch
        would wait for the sweeper. Past the budget the message goes back to its queue
        (``Reject(requeue=True)``): at once if Redis takes the write by then, else it
        stays unacknowledged and the broker hands it out again after the visibility
        timeout. Never dropped. Links are idempotent: running one again is safe."""
        budget = time.monotonic() + get_settings().link_soft_time_limit / 2
        delay = RIDE_FIRST_WAIT
        while True:
            try:
                return call()
            except Reject as exc:
                outage: Exception = exc
                if not broker_outage(getattr(exc, "reason", None)):
                    raise
            except REDIS_OUTAGE as exc:
                outage = exc
            if time.monotonic() + delay > budget:
                log.warning("link %s: Redis still away or full (%s); the message goes back "
                            "to its queue", self.name, type(outage).__name__)  # fmt: skip
                raise Reject(outage, requeue=True) from None
            log.warning("link %s: Redis away or full (%s); running it again in %.2g s",
                        self.name, type(outage).__name__, delay)  # fmt: skip
            time.sleep(delay)
            delay = min(delay * 2, RIDE_LONGEST_WAIT)

    def _poisoned(self, ids: dict[str, Any]) -> bool:
        """One more delivery of this message; True past ``RXFLEET_MAX_DELIVERIES``.

        A message is a task id and its retry number (a retry is a new message).
        Counting is best effort: with Redis away the link runs and meets the
        outage itself (its own retry policy).
        """
        if self.request.called_directly or self.request.id is None:
            return False
        message = f"{self.request.id}:{self.request.retries or 0}"
        try:
            count = context.runs().delivered(ids["run_id"], message)
        except REDIS_OUTAGE:
            return False
        return count > get_settings().max_deliveries

    def _dead_letter(self, ids: dict[str, Any]) -> dict[str, Any]:
        run_id, first, count = ids["run_id"], ids["batch"], ids["count"]
        log.error("link %s: batch delivered more than %d times, its open claims go to the "
                  "dead letters (poison)", self.name, get_settings().max_deliveries)  # fmt: skip
        batch = context.batch(first, count)
        trace = f"{run_id}/{first}"
        report = dead_letter_batch(context.runs(), context.database(), run_id, batch, self.name,
                                   trace, context.rejects())  # fmt: skip
        return report.as_dict()


def batch_ids(args: tuple[Any, ...]) -> dict[str, Any]:
    """run_id, batch (first sequence number) and count from a link's arguments."""
    if (
        len(args) >= 3
        and isinstance(args[0], str)
        and isinstance(args[1], int)
        and isinstance(args[2], int)
    ):
        return {"run_id": args[0], "batch": args[1], "count": args[2]}
    return {}
