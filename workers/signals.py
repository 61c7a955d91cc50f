"""Signal hooks: logging, Sentry, per-process state, and the no-PHI guard rails."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import beat_init, worker_init, worker_process_init

from config import get_settings
from rxfleet.observability import init_sentry
from rxfleet.redisconn import forget_clients

log = logging.getLogger("rxfleet.worker")


@worker_init.connect
def _on_worker_init(**_: Any) -> None:
    settings = get_settings()
    settings.redis_url_or_raise()
    init_sentry(settings)
    log.info("worker ready: queues %s and %s", settings.queue_cpu, settings.queue_gateway)


@beat_init.connect
def _on_beat_init(**_: Any) -> None:
    settings = get_settings()
    settings.redis_url_or_raise()
    init_sentry(settings)


@worker_process_init.connect
def _on_worker_process_init(**_: Any) -> None:
    forget_clients()  # never share a socket across a fork
    from tasks.submit import forget_gateway_client

    forget_gateway_client()
