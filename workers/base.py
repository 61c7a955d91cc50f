"""The base task of every chain link."""

from __future__ import annotations

from typing import Any

from celery import Task

from config import get_settings
from rxfleet.redisconn import get_redis
from rxfleet.runs import RunStore, run_store


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

    @property
    def runs(self) -> RunStore:
        settings = get_settings()
        return run_store(get_redis(), settings.key_prefix, settings.run_ttl_seconds)

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        get_settings()  # fail fast on broken settings, before any work
