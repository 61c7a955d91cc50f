"""Servers the integration tests share: one private PostgreSQL for the session
(``LocalPostgres``: a free loopback port, never the machine's own server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from rxfleet.embedded.postgres_server import LocalPostgres, local_postgres, memory_dir


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
