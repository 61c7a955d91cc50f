"""The embedded default: a whole fleet on one machine with nothing installed.

With no ``RXFLEET_REDIS_URL``, ``rxfleet run`` starts a private Redis-compatible
server, a private PostgreSQL (the system of record; unless
``RXFLEET_DATABASE_URL`` names one) and the sandbox gateway (unless a gateway
URL is configured), makes ephemeral PHI keys when none are set (32 random bytes
each), turns the sandbox mode on (its client credentials) and points the
process's settings at them; the CLI then starts an in-process worker and beat
(``workers.inprocess``) and runs exactly the production code paths.

Only the user who runs it can reach its servers: PostgreSQL listens on a Unix
socket in a 0700 directory (no TCP), as two roles (an owner that migrates and
grants, the fleet's role that may only append to the audit trail); Redis on
127.0.0.1 asks for a password made here that never leaves the process.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from pydantic import SecretStr

from config import Settings, configure, get_settings
from rxfleet.claims.phi import generate_key
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.gateway.sandbox.server import SandboxGateway
from rxfleet.stores.connection import forget_clients

log = logging.getLogger("rxfleet.embedded")
#: The embedded database's roles: the owner migrates and grants (``rxfleet.stores.privileges``),
#: the fleet appends to the audit trail and cannot edit it.
OWNER_ROLE, FLEET_ROLE, OWNER_DATABASE = "rxfleet_owner", "rxfleet_fleet", "rxfleet_sor"


def _ephemeral_keys(settings: Settings) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    if settings.phi_key is None:
        overrides["phi_key"] = SecretStr(generate_key())
    if settings.vault_key is None:
        overrides["vault_key"] = SecretStr(generate_key())
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
    gateway = SandboxGateway(plans=settings.sandbox_plans)
    gateway.start()
    try:
        yield {"gateway_url": gateway.url, "token_url": gateway.token_url}
    finally:
        gateway.stop()


@contextlib.contextmanager
def _database(settings: Settings) -> Iterator[dict[str, Any]]:
    if settings.database_url:
        yield {}
        return
    server = LocalPostgres().start()
    try:
        server.create_role(OWNER_ROLE, createrole=True)
        server.create_database(OWNER_DATABASE, owner=OWNER_ROLE)
        yield {
            "database_owner_url": SecretStr(server.url_for(OWNER_DATABASE, OWNER_ROLE)),
            "database_url": server.url_for(OWNER_DATABASE, FLEET_ROLE),
        }
    finally:
        server.stop()


@contextlib.contextmanager
def embedded_services() -> Iterator[Settings]:
    """Start the servers, point the process's settings at them, stop them all after."""
    base = get_settings()
    server = LocalRedis(secret=True).start()
    try:
        with _database(base) as database, _sandbox(base) as gateway:
            keys = _ephemeral_keys(base)
            # Embedded mode is the sandbox: its client credentials are the defaults.
            yield configure(redis_url=server.url, sandbox=True, **database, **gateway, **keys)
    finally:
        forget_clients()
        server.stop()
        configure(
            redis_url=base.redis_url,
            database_url=base.database_url,
            database_owner_url=base.database_owner_url,
            gateway_url=base.gateway_url,
            token_url=base.token_url,
            sandbox=base.sandbox,
        )
