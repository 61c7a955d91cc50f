"""The largest batch (10,000 claims) through every Redis script of the run store, on a
real server: Lua unpacks only a few thousand values at once, so scripts slice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.stores.runs import RunStore

pytestmark = pytest.mark.integration
N = 10_000


@pytest.fixture(scope="module")
def runs() -> Iterator[RunStore]:
    server = LocalRedis().start()
    try:
        yield RunStore(redis.Redis.from_url(server.url, decode_responses=True), "big")
    finally:
        server.stop()


def test_a_batch_of_ten_thousand_claims_goes_through_every_script(runs: RunStore) -> None:
    records = [WorkRecord(seq=s, source="f", line=s + 1, claim_id=f"C{s}") for s in range(N)]
    runs.register_batch("R", 0, N)
    assert runs.add("R", records, {s: f"v{s}" for s in range(N)}, only_missing=True) == N
    assert runs.existing("R", range(N + 5)) == set(range(N))
    for record in records:
        record.stage = Stage.ROUTED
    runs.save("R", records, range(N))
    assert {r.stage for r in runs.load("R", range(N))} == {Stage.ROUTED}
    assert runs.first_seen("R", [(f"C{s}", s) for s in range(N)]) == list(range(N))
    assert runs.retire("R", 0, list(range(N))) == (N, N)
    assert runs.in_flight("R") == 0 and runs.retire("R", 0, list(range(N))) == (0, N)
