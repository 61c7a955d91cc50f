"""Fast unit fixtures: fakeredis (with Lua) stands in for Redis here only."""

from __future__ import annotations

import fakeredis
import pytest

from rxfleet.stores.keys import Keys
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore


@pytest.fixture
def fake() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis(decode_responses=True)


@pytest.fixture
def runs(fake: fakeredis.FakeRedis) -> RunStore:
    return RunStore(client=fake, keys=Keys("t"), ttl=600)


@pytest.fixture
def tokens(fake: fakeredis.FakeRedis) -> TokenStore:
    return TokenStore(client=fake, keys=Keys("t"), lock_timeout=2, lock_wait=2)
