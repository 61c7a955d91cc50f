"""The embedded default: a whole fleet on one machine with nothing installed.

With no ``RXFLEET_REDIS_URL``, ``rxfleet run`` starts a private Redis-compatible
server, the sandbox gateway (unless a gateway URL is configured), an in-process
worker for both queues, and beat; then it runs exactly the production code paths.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Iterator
from typing import Any

from config import Settings, configure, get_settings
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.stores.connection import forget_clients

log = logging.getLogger("rxfleet.embedded")


def _ephemeral_keys(settings: Settings) -> dict[str, Any]:
    from pydantic import SecretStr

    overrides: dict[str, Any] = {}
    if settings.phi_key is None:
        overrides["phi_key"] = SecretStr(secrets.token_urlsafe(32))
    if settings.vault_key is None:
        overrides["vault_key"] = SecretStr(secrets.token_urlsafe(32))
    if overrides:
        log.warning(
            "embedded mode: no RXFLEET_PHI_KEY/RXFLEET_VAULT_KEY set; using ephemeral keys "
            "(patient tokens will differ from run to run)"
        )
    return overrides


@contextlib.contextmanager
def _sandbox(settings: Settings) -> Iterator[dict[str, Any]]:
    if settings.gateway_url and settings.token_url:
        yield {}
        return
    from rxfleet.gateway.sandbox.server import SandboxGateway

    gateway = SandboxGateway(plans=settings.sandbox_plans)
    gateway.start()
    try:
        yield {"gateway_url": gateway.url, "token_url": gateway.token_url}
    finally:
        gateway.stop()


@contextlib.contextmanager
def embedded_fleet(concurrency: int = 4) -> Iterator[Settings]:
    """Start everything, point the process's settings at it, stop it all after."""
    from workers import app as app_module
    from workers.inprocess import beat_thread, worker_thread

    base = get_settings()
    server = LocalRedis().start()
    try:
        with _sandbox(base) as gateway:
            settings = configure(redis_url=server.url, **gateway, **_ephemeral_keys(base))
            app = app_module.configure(settings)
            queues = [settings.queue_cpu, settings.queue_gateway]
            with worker_thread(app, queues, concurrency), beat_thread(app):
                yield settings
    finally:
        forget_clients()
        server.stop()
        configure(redis_url=base.redis_url, gateway_url=base.gateway_url, token_url=base.token_url)
