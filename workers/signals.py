"""Signal hooks: logging, Sentry, per-process state, and the guard rails (no PHI, no
sandbox settings mixed with real ones, no fleet without keys)."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
import time
from typing import Any

import kombu.asynchronous.timer as kombu_timer
import kombu.transport.redis as kombu_redis
import redis
from celery.signals import (
    after_setup_logger,
    beat_init,
    celeryd_after_setup,
    heartbeat_sent,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)
from pydantic import ValidationError

from config import get_settings
from config.processes import WORKER_SECRETS
from rxfleet import context, logs
from rxfleet.errors import ConfigError
from rxfleet.guards import check_fleet
from rxfleet.observability import init_sentry
from rxfleet.stores import clock
from rxfleet.stores.connection import (
    check_clock,
    check_eviction,
    forget_clients,
    get_redis,
)
from workers.base import batch_ids

log = logging.getLogger("rxfleet.worker")


def connect_signals() -> None:
    """Connect the hooks (idempotent: Celery keeps one receiver per function)."""
    worker_init.connect(_on_worker_init, weak=False)
    beat_init.connect(_on_beat_init, weak=False)
    worker_process_init.connect(_on_worker_process_init, weak=False)
    after_setup_logger.connect(_on_setup_logger, weak=False)
    worker_shutdown.connect(_on_shutdown, weak=False)
    task_prerun.connect(_on_task_prerun, weak=False)
    task_postrun.connect(_on_task_postrun, weak=False)
    worker_process_shutdown.connect(_on_shutdown, weak=False)
    celeryd_after_setup.connect(_on_worker_named, weak=False)
    heartbeat_sent.connect(_on_heartbeat, weak=False)


def _on_worker_init(**_: Any) -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:  # names the settings, never their values
        names = ", ".join(f"RXFLEET_{str(e['loc'][0]).upper()}" for e in exc.errors() if e["loc"])
        raise SystemExit(f"rxfleet: settings not valid: {names}") from None
    logs.configure(settings)
    try:
        # Redis, the vault key (config.processes), and real settings unless RXFLEET_SANDBOX=1
        check_fleet(settings, WORKER_SECRETS)
        check_eviction(get_redis())  # a Redis that drops keys when full loses claims
        check_clock(get_redis(), settings.clock_skew_max)  # the fleet's clock: Redis's
        settings.check_delivery()  # no held retry handed to a second worker early
    except ConfigError as exc:
        # Celery logs and swallows a receiver's exceptions; SystemExit stops the worker.
        log.critical("rxfleet: %s", str(exc))  # our own message: setting names, no values
        raise SystemExit(f"rxfleet: {exc}") from None
    init_sentry(settings)
    _on_the_fleets_clock()
    log.info("worker ready: queues %s and %s", settings.queue_cpu, settings.queue_gateway)


def _on_the_fleets_clock() -> None:
    """kombu's Redis transport stamps each unacknowledged message, and finds a dead
    worker's, with its module's ``time``; its timer turns a countdown's ETA into its own
    time with ``_time``: both the fleet's clock instead (``stores.clock``), so a host
    clock stepped while the worker runs neither hands out live workers' messages again,
    nor hides its own from the others, nor runs a held retry early."""
    kombu_redis.time = clock.now  # type: ignore[attr-defined]
    kombu_timer._time = clock.now  # type: ignore[attr-defined]


def _on_setup_logger(logger: logging.Logger | None = None, **_: Any) -> None:
    """Celery set up the root logger's handlers: filters (scrub last) and format on them."""
    logs.configure(get_settings(), logger)


def _on_beat_init(sender: Any = None, **_: Any) -> None:
    settings = get_settings()
    settings.redis_url_or_raise()
    logs.configure(settings)
    try:
        check_eviction(get_redis())
        check_clock(get_redis(), settings.clock_skew_max)
    except ConfigError as exc:
        log.critical("rxfleet: %s", str(exc))
        raise SystemExit(f"rxfleet: {exc}") from None
    if sender is not None and threading.current_thread() is threading.main_thread():
        # `celery beat` only sends the token check: no task-sent events, so Flower's
        # task list shows claims' batches only. (The embedded beat thread shares the
        # producer's app and leaves its events alone.)
        sender.app.conf.task_send_sent_event = False
    init_sentry(settings)


_roll: dict[str, list[str]] = {}  # this worker's node name → the queues it consumes


def _on_worker_named(sender: str = "", instance: Any = None, **_: Any) -> None:
    """The node name and its queues (-Q), for the heartbeats below."""
    if instance is not None:
        _roll[sender] = sorted(instance.app.amqp.queues.consume_from)


def _on_heartbeat(**_: Any) -> None:
    """Every event heartbeat (2 s): this worker is alive (the exporter's ``rxfleet_workers``)."""
    try:
        roll = context.workers()
        for node, queues in _roll.items():
            roll.heard(node, queues)
    except (redis.RedisError, ConfigError, ValidationError):
        pass  # Redis away: the worker stops being counted, which is the truth


def _on_worker_process_init(**_: Any) -> None:
    forget_clients()  # never share a socket across a fork
    context.forget()


def _on_shutdown(**_: Any) -> None:
    """Close what this process opened (the aiohttp session and its loop, the database)
    before the interpreter tears down: no "unclosed session" traceback at shutdown."""
    context.forget()


#: The log context each running task pushed, by task id (popped at postrun).
_bound: dict[str, tuple[contextvars.Token[dict[str, Any] | None], float]] = {}


def _on_task_prerun(task_id: str = "", task: Any = None, args: Any = (), **_: Any) -> None:
    """Bind the link's ids before Celery logs anything of the task: its own lines
    (succeeded, retry, failed) and ours carry run, link, batch and count."""
    request = getattr(task, "request", None)
    root = getattr(request, "root_id", None) or task_id
    ids = batch_ids(tuple(args or ()))
    link = str(getattr(task, "name", "")).split(".")[-1] or None
    token = logs.push(**ids, link=link, task_id=task_id, trace_id=root)
    _bound[task_id] = (token, time.monotonic())


def _on_task_postrun(task_id: str = "", retval: Any = None, state: str = "", **_: Any) -> None:
    """One summary line per link run (its counts), then the ids are dropped."""
    token, started = _bound.pop(task_id, (None, time.monotonic()))
    fields = logs.current()
    if fields.get("run_id") is not None:
        counts = " ".join(f"{k}={v}" for k, v in sorted(_counts(retval).items()))
        log.info("link %s %s in %.2f s: %s", fields.get("link"), (state or "?").lower(),
                 time.monotonic() - started, counts or "no counts")  # fmt: skip
    if token is not None:
        with contextlib.suppress(ValueError):  # pushed in another context: nothing to drop
            logs.pop(token)


def _counts(retval: Any) -> dict[str, int]:
    """The link's answer, counts only (never anything else a result might hold)."""
    if not isinstance(retval, dict):
        return {}
    return {str(k): v for k, v in retval.items() if isinstance(v, int) and not isinstance(v, bool)}
