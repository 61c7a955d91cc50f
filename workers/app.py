"""The Celery app: ``celery -A workers.app worker|beat|flower``.

Redis is broker (unless ``RXFLEET_BROKER_URL`` names another, e.g. RabbitMQ)
and result backend. JSON only; late acks with reject on worker loss, prefetch 1. Beat schedules
exactly once across the fleet: a lease in Redis (``workers.beat``).

A dead worker costs minutes, not hours: the visibility timeout is short
(``RXFLEET_VISIBILITY_TIMEOUT``, 100 s) and every worker sweeps the unacked
messages of the dead every 10 s (``RXFLEET_UNACKED_RESTORE_INTERVAL``). It stays
above the longest countdown plus the hard time limit of a link (checked at
start-up), so a held retry is never handed out early; a longer wait (a long
Retry-After) is taken in several countdowns, and the send leases keep a claim
sent once even if a message does come back early.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from pydantic import ValidationError

from config import Settings, get_settings
from rxfleet.stores import clock
from rxfleet.stores.broker import PRIORITY_STEPS
from workers.signals import connect_signals

TASK_MODULES = [
    "tasks.intake",
    "tasks.crosswalk",
    "tasks.submit",
    "tasks.record",
    "tasks.token",
    "tasks.sweep",
    "tasks.prune",
]


class FleetCelery(Celery):
    """Celery whose ``now`` is the fleet's clock (Redis's, ``stores.clock``): a
    countdown's ETA is stamped on it, and the workers read it back on it too
    (``workers.signals``), so a host clock stepped while a process runs neither holds
    a retry for ten minutes nor lets it go early."""

    def now(self) -> datetime:
        return datetime.fromtimestamp(clock.now(), tz=self.timezone)


app = FleetCelery("rxfleet", task_cls="workers.base:FleetTask", include=TASK_MODULES)
# The one app of every rxfleet process: chains deserialized in any thread
# (the embedded worker's pool included) must publish their next link through it.
app.set_default()


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings derived from the one settings class."""
    transport = {
        "visibility_timeout": settings.visibility_timeout,
        "unacked_restore_interval": settings.unacked_restore_interval,  # a dead worker's messages
        "unacked_restore_throttle": 1,
    }
    return {
        "broker_url": settings.broker_url or settings.redis_url,
        "result_backend": settings.redis_url,
        "broker_transport_options": {**transport, "priority_steps": list(PRIORITY_STEPS)},
        "result_backend_transport_options": transport,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "result_expires": 3600,
        "task_soft_time_limit": settings.link_soft_time_limit,
        "task_time_limit": settings.link_time_limit,
        "broker_connection_max_retries": None,  # ride through a broker outage
        # and through a full one: an acknowledgement Redis refuses (OOM, then EXECABORT)
        # is a channel error; retried, the consumer reconnects (the message comes back)
        # instead of stopping the worker, whose prefork pool could hang in its shutdown
        "broker_channel_error_retry": True,
        "task_default_queue": settings.queue_cpu,
        "task_queues": [_queue(settings.queue_cpu), _queue(settings.queue_gateway)],
        "task_routes": {"tasks.submit.*": {"queue": settings.queue_gateway}},
        "task_send_sent_event": True,
        "worker_send_task_events": True,
        "worker_hijack_root_logger": False,
        "beat_schedule": beat_schedule(settings),
        "beat_scheduler": "workers.beat:LeasedScheduler",  # one beat schedules, others wait
        "timezone": "UTC",
    }


def _queue(name: str) -> Queue:
    """A queue bound to an exchange of its own name (a broker shows two exchanges, not
    both queues under ``rxfleet.cpu``, the default exchange)."""
    return Queue(name, Exchange(name, type="direct"), routing_key=name)


def beat_schedule(settings: Settings) -> dict[str, Any]:
    """The token check, no more often than the token's margin needs (min(margin/2, 30 s)).

    It stays out of Flower: the task sends no events (``send_events=False``) and
    the beat process sends no task-sent events (``workers.signals``); a check
    not run within its own period expires instead of piling up.
    """
    period = settings.token_check_seconds()
    return {
        "refresh-portal-token": {
            "task": "tasks.token.refresh_token",
            "schedule": period,
            "options": {"expires": period},
        },
        "prune-past-retention": {
            "task": "tasks.prune.prune",
            "schedule": 24 * 3600,
            "options": {"expires": 3600},
        },
        "sweep-stalled-batches": {
            "task": "tasks.sweep.sweep",
            "schedule": settings.sweep_interval,
            "options": {"expires": settings.sweep_interval},
        },
    }


def configure(settings: Settings | None = None) -> Celery:
    """(Re)apply settings to the app: at import, and by the embedded mode."""
    app.conf.update(celery_config(settings or get_settings()))
    return app


# A setting of the wrong type is said in one line where it can be: by the CLI
# (exit 2) and by the worker's start-up check (it refuses to start).
with contextlib.suppress(ValidationError):
    configure()
connect_signals()
