"""A private PostgreSQL for the session (``LocalPostgres``: a free loopback port,
never the machine's own server) and a fresh database for each test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from rxfleet.embedded.postgres_server import LocalPostgres, local_postgres, memory_dir
from rxfleet.stores.database import Database


@pytest.fixture(scope="session")
def pg_server() -> Iterator[LocalPostgres]:
    with local_postgres(base_dir=memory_dir()) as server:  # tmpfs when there is room
        yield server


@pytest.fixture
def blank_url(pg_server: LocalPostgres) -> str:
    """The URL of a new, empty database (no migrations applied)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server.url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return pg_server.url_for(name)


@pytest.fixture
def db(blank_url: str) -> Iterator[Database]:
    """A migrated database of its own."""
    database = Database(blank_url)
    database.upgrade()
    yield database
    database.close()
