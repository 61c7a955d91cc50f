"""Signal hooks: logging, Sentry, per-process state, and the no-PHI guard rails."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import beat_init, worker_init, worker_process_init

from config import get_settings
from rxfleet import context
from rxfleet.errors import ConfigError
from rxfleet.observability import init_sentry
from rxfleet.phikeys import require_keys
from rxfleet.stores.connection import forget_clients

log = logging.getLogger("rxfleet.worker")


def connect_signals() -> None:
    """Connect the hooks (idempotent: Celery keeps one receiver per function)."""
    worker_init.connect(_on_worker_init, weak=False)
    beat_init.connect(_on_beat_init, weak=False)
    worker_process_init.connect(_on_worker_process_init, weak=False)


def _on_worker_init(**_: Any) -> None:
    settings = get_settings()
    try:
        settings.redis_url_or_raise()
        require_keys(settings)  # CONTRACT section 2: with a real Redis, no keys, no fleet
    except ConfigError as exc:
        # Celery logs and swallows a receiver's exceptions; SystemExit stops the worker.
        log.critical("rxfleet: %s", exc)
        raise SystemExit(f"rxfleet: {exc}") from None
    init_sentry(settings)
    log.info("worker ready: queues %s and %s", settings.queue_cpu, settings.queue_gateway)


def _on_beat_init(**_: Any) -> None:
    settings = get_settings()
    settings.redis_url_or_raise()
    init_sentry(settings)


def _on_worker_process_init(**_: Any) -> None:
    forget_clients()  # never share a socket across a fork
    context.forget()
