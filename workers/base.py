"""The base task of every chain link, and the Redis-outage retry policy the links share."""

from __future__ import annotations

from typing import Any

from celery import Task
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from config import get_settings

#: What a link that touches Redis retries on: Redis itself going away.
REDIS_OUTAGE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)
#: How it waits: exponential (2 s, 4 s, ... capped at 60 s) with jitter.
REDIS_OUTAGE_BACKOFF: dict[str, Any] = {
    "retry_backoff": 2,
    "retry_backoff_max": 60,
    "retry_jitter": True,
}


class FleetTask(Task):  # type: ignore[type-arg]
    """Late acks, JSON args (run id and sequence numbers: never claims, never PHI).

    Links that are pure (validate, route) declare no retries: a deterministic
    failure is a result. Links that touch the outside declare their own policy.
    """

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
    # Task arguments are run ids and numbers; still, never echo them into logs/events.
    argsrepr_max = 64

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        get_settings()  # fail fast on broken settings, before any work
