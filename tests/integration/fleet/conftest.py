"""A real fleet for the session: a private Redis server, the sandbox gateway
over HTTP, and a real Celery worker (WorkController, thread pool) consuming both
queues. Tests that need different faults set them through ``fleet.reset``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bench.harness import PHI_KEY, VAULT_KEY
from config import configure
from rxfleet import context
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.gateway.sandbox.server import SandboxGateway
from rxfleet.stores.connection import forget_clients
from tests.integration.conftest import new_database
from tests.integration.fleet.fleet_support import Fleet
from workers import app as app_module
from workers.inprocess import worker_thread


@pytest.fixture(scope="session")
def fleet(pg_server: LocalPostgres) -> Iterator[Fleet]:
    server = LocalRedis().start()
    gateway = SandboxGateway()
    gateway.start()
    settings = configure(
        redis_url=server.url,
        database_url=new_database(pg_server),
        gateway_url=gateway.url,
        token_url=gateway.token_url,
        phi_key=SecretStr(PHI_KEY),
        vault_key=SecretStr(VAULT_KEY),
        sandbox=True,
        backoff_base=0.2,
        backoff_cap=1.0,
        submit_max_retries=4,
        breaker_cooldown=2.0,  # short timeouts for fault tests: an open breaker waits 2 s, not 15
    )
    app = app_module.configure(settings)
    try:
        with worker_thread(app, [settings.queue_cpu, settings.queue_gateway], concurrency=4):
            yield Fleet(server, gateway, settings)
    finally:
        gateway.stop()
        forget_clients()
        context.forget()
        server.stop()


@pytest.fixture
def clean_fleet(fleet: Fleet) -> Fleet:
    fleet.reset()
    return fleet
