"""A fresh database for each test, on the session's private PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.stores.database import Database
from tests.integration.conftest import new_database


@pytest.fixture
def blank_url(pg_server: LocalPostgres) -> str:
    """The URL of a new, empty database (no migrations applied)."""
    return new_database(pg_server)


@pytest.fixture
def db(blank_url: str) -> Iterator[Database]:
    """A migrated database of its own."""
    database = Database(blank_url)
    database.upgrade()
    yield database
    database.close()
