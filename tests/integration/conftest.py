"""Servers the integration tests share: one private PostgreSQL for the session
(``LocalPostgres``: a free loopback port, never the machine's own server).

Every test under this folder carries the ``integration`` marker, and those of the
fault-test files (``CHAOS_FILES``, and every file under ``survive/``) also ``chaos``:
``-m "not chaos"`` skips the long ones, ``-m "not integration"`` all that start servers.
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from rxfleet.embedded.postgres_server import LocalPostgres, local_postgres, memory_dir

HERE = Path(__file__).resolve().parent
CHAOS_DIRS = frozenset({HERE / "survive"})
CHAOS_FILES = frozenset({
    HERE / "fleet" / "test_gateway_faults.py",
    HERE / "test_two_hosts.py",  # cuts a host off mid-run
    HERE / "test_beat_once.py",  # kills a beat
})  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(item.path).resolve()
        if HERE in path.parents:
            item.add_marker(pytest.mark.integration)
        if path in CHAOS_FILES or path.parent in CHAOS_DIRS:
            item.add_marker(pytest.mark.chaos)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    with local_postgres(base_dir=memory_dir()) as server:  # tmpfs when there is room
        yield server


def new_database(server: LocalPostgres) -> str:
    """The URL of a new, empty database on ``server``."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return server.url_for(name)


def ctrl_c_reaches_it() -> None:
    """``preexec_fn`` for a child the test will Ctrl-C: SIGINT back to its default.

    A suite started in the background of a non-interactive shell (``.ci/run &``,
    nohup) inherits SIGINT ignored, and so would the child: Python then installs no
    KeyboardInterrupt handler, as a background job should not be interrupted.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
