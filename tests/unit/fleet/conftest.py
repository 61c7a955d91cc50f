"""Fast unit fixtures: fakeredis (with Lua) stands in for Redis here only."""

from __future__ import annotations

import fakeredis
import pytest

from rxfleet.claims.phi import SecretSealer
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.routes import RouteMemo
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore


@pytest.fixture
def fake() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def runs(fake: fakeredis.FakeRedis) -> RunStore:
    return RunStore(fake, "t", ttl=600)


@pytest.fixture
def tokens(fake: fakeredis.FakeRedis) -> TokenStore:
    return TokenStore(fake, "t", lock_timeout=2, lock_wait=2, sealer=SecretSealer(bytes(range(32))))


@pytest.fixture
def pause(fake: fakeredis.FakeRedis) -> FleetPause:
    return FleetPause(fake, "t")


@pytest.fixture
def routes(fake: fakeredis.FakeRedis) -> RouteMemo:
    return RouteMemo(fake, "t", ttl=600)
