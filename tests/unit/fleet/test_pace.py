"""The fleet's pace stores: the adaptive in-flight limit and the gateway rate (Lua on
fakeredis; the fleet against the sandbox is tests/integration/fleet/test_pace.py)."""

from __future__ import annotations

import fakeredis
import pytest

from rxfleet.stores.inflight import START, InflightLimit, Window
from rxfleet.stores.rate import PACE, GatewayRate


@pytest.fixture
def limit(fake: fakeredis.FakeRedis) -> InflightLimit:
    return InflightLimit(fake, "t", "gw", floor=4, ceiling=400)


def _ok(n: int, latency: float = 100.0, *, full: bool = True) -> Window:
    return Window(n, 0, latency, full)


def test_slow_start_grows_a_quarter_of_the_answers_while_the_share_is_used(
    limit: InflightLimit,
) -> None:
    assert limit.observe("p1", _ok(64)) == (START + 16, 1)
    assert limit.observe("p1", _ok(10, full=False))[0] == START + 16  # not used: not grown
    for _ in range(30):
        limit.observe("p1", _ok(64))
    assert limit.observe("p1", _ok(64))[0] == 400  # the ceiling


def test_a_throttled_window_cuts_by_the_share_answered_once_a_round_trip(
    limit: InflightLimit, fake: fakeredis.FakeRedis
) -> None:
    limit.observe("p1", _ok(64))  # 80
    cut, _ = limit.observe("p1", Window(48, 16, 100.0, True))
    assert cut == pytest.approx(80 * 0.9 * 48 / 64)
    again, _ = limit.observe("p1", Window(48, 16, 100.0, True))
    assert again == cut  # the same round trip: no second cut
    fake.hset(limit.key, "cut_at", 0)  # a round trip later
    assert limit.observe("p1", Window(0, 64, None, True))[0] == pytest.approx(cut * 0.6)
    grown, _ = limit.observe("p1", _ok(10))
    assert grown == pytest.approx(cut * 0.6 + 10 / (cut * 0.6))  # after a cut: +1 a round trip
    assert limit.state()["cuts"] == 2


def test_a_rising_latency_cuts_before_the_gateway_throttles(
    limit: InflightLimit, fake: fakeredis.FakeRedis
) -> None:
    limit.observe("p1", _ok(64, latency=20.0))  # baseline 20 ms
    before = limit.state()["limit"]
    assert limit.observe("p1", _ok(64, latency=35.0))[0] > before  # under twice: grows
    grown = limit.state()["limit"]
    fake.hset(limit.key, "cut_at", 0)
    assert limit.observe("p1", _ok(64, latency=90.0))[0] == pytest.approx(grown * 0.95)


def test_the_limit_stays_above_the_floor_and_under_rate_times_latency(
    fake: fakeredis.FakeRedis,
) -> None:
    rated = InflightLimit(fake, "t", "gw", floor=4, ceiling=400, rate=100.0)
    assert rated.observe("p1", _ok(64, latency=200.0))[0] == pytest.approx(100 * 0.2 * 1.5)
    for _ in range(10):
        fake.hset(rated.key, "cut_at", 0)
        rated.observe("p1", Window(0, 10, None, True))
    assert rated.state()["limit"] == 4


def test_live_processes_share_the_limit(limit: InflightLimit) -> None:
    limit.observe("p1", _ok(64))
    value, procs = limit.observe("p2", _ok(0))
    assert procs == 2 and limit.share(value, procs) == 40


def test_rate_slots_are_one_interval_apart_and_never_beyond_the_horizon(
    fake: fakeredis.FakeRedis,
) -> None:
    rate = GatewayRate(fake, 100.0, "t", "gw")
    first = rate.take(10)
    assert first.count == 10 and first.first < 0.01
    assert first.interval == pytest.approx(1 / (100 * PACE), rel=1e-4)
    second = rate.take(100)
    assert second.count == 39  # up to half a second ahead: 49 slots in all
    assert second.first == pytest.approx(10 * first.interval, abs=0.01)
    full = rate.take(5)
    assert full.count == 0 and 0 < full.wait <= first.interval


def test_rate_schedule_waits_for_room_until_every_request_has_a_slot(
    fake: fakeredis.FakeRedis,
) -> None:
    rate = GatewayRate(fake, 200.0, "t", "gw")
    times = rate.schedule(150)  # 0.75 s of slots: more than the horizon holds at once
    assert len(times) == 150  # (their spacing on a real server's clock: the sandbox's count,
    # tests/integration/fleet/test_pace.py; fakeredis's TIME in Lua is not monotonic enough)
