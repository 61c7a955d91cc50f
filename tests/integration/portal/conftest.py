"""The Procfile fleet (real redis-server, PostgreSQL, gateway, cpu, submit and beat
processes) whose sandbox gateway is also the payer portal: each test pulls its own
named portal (``/portals/{name}``, a fresh queue of pending claims) with the
Procfile's ``sync`` line, started by the test.

Module scope: the tests of a file share one fleet, and the files run in parallel."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bench.harness import Fleet, procfile_fleet
from rxfleet.embedded.postgres_server import LocalPostgres
from tests.integration.conftest import new_database

#: Each named portal: 120 payable claims; 10 requests a second, above that 429.
PENDING = 120
PORTAL = {"portal": {"pending": PENDING, "seed": 18, "rate_limit": 10, "rate_window": 1.0}}

SETTINGS = {
    "RXFLEET_MAX_INFLIGHT": "40",  # the sync pulls as the fleet drains: a kill lands mid-pull
    "RXFLEET_SYNC_PAGE": "20",
    "RXFLEET_SYNC_POLL": "0.2",
    "RXFLEET_SYNC_LEASE": "3",
    "RXFLEET_SYNC_RECOVER_SECONDS": "3",
    "RXFLEET_BATCH_SIZE": "20",
    "RXFLEET_SWEEP_INTERVAL": "2",
    "RXFLEET_STALL_SECONDS": "10",
}


@pytest.fixture(scope="module")
def portal_fleet(
    pg_server: LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fleet]:
    scenario = tmp_path_factory.mktemp("portal") / "portal.json"
    scenario.write_text(json.dumps(PORTAL))
    with procfile_fleet(
        scenario=scenario, database_url=new_database(pg_server), extra_env=SETTINGS
    ) as fleet:
        yield fleet
