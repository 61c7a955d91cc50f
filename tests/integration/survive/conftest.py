"""Issue 10: a run survives everything. A real redis-server (AOF, fsync always),
PostgreSQL, the sandbox gateway with 20% faults (5% responses lost after
adjudication, 5% connections dropped before, 10% 503 without Retry-After), and
the Procfile's worker lines as separate processes, killed at will.

The Procfile fleet every test of a module shares (module scope: each file has its
own fleet, so the files run in parallel)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from bench.harness import Fleet, procfile_fleet
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis
from tests.integration.conftest import new_database

FAULTS = {
    "seed": 10,
    "drops": [{"rate": 0.05, "after_adjudication": True}, {"rate": 0.05}],
    "throttles": [{"status": 503, "rate": 0.10, "retry_after": None}],
    "latency_ms": 15,
}


SETTINGS = {
    "RXFLEET_VISIBILITY_TIMEOUT": "30",
    "RXFLEET_COUNTDOWN_MAX": "5",
    "RXFLEET_LINK_TIME_LIMIT": "10",
    "RXFLEET_LINK_SOFT_TIME_LIMIT": "8",
    "RXFLEET_BACKOFF_BASE": "0.2",
    "RXFLEET_BACKOFF_CAP": "2",
    "RXFLEET_MAX_DELIVERIES": "3",
    "RXFLEET_SWEEP_INTERVAL": "5",
    "RXFLEET_STALL_SECONDS": "40",
    "RXFLEET_TOKEN_CHECK_INTERVAL": "1",
    "RXFLEET_SUBMIT_CONCURRENCY": "4",
    "RXFLEET_CPU_CONCURRENCY": "2",
    # A killed submit worker's claims stay leased for 4 x (connect + read timeout): the
    # defaults (3.05 + 15 s) made every kill wait 72 s; the sandbox answers in 15 ms.
    "RXFLEET_CONNECT_TIMEOUT": "1",
    "RXFLEET_READ_TIMEOUT": "3",
}


@pytest.fixture(scope="module")
def chaos(pg_server: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The Procfile's processes on the chaos app, under a supervisor that restarts a
    worker, beat or gateway that exits on its own, as the process supervisor of a
    production fleet does (docs/operations.md): a worker may die of an unrecoverable
    broker error while Redis is away."""
    scenario = tmp_path_factory.mktemp("survive") / "faults.json"
    scenario.write_text(json.dumps(FAULTS))
    with procfile_fleet(
        scenario=scenario,
        server=LocalRedis(binary=shutil.which("redis-server"), appendonly=True),
        database_url=new_database(pg_server),
        extra_env=SETTINGS,
        flower=True,
        supervised=True,
        app="tests.integration.chaos_app",
    ) as fleet:
        yield fleet
