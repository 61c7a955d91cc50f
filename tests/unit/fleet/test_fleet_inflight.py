"""The fleet's gateway in-flight limit (one Lua script, fakeredis here): slow start while
senders want more, one cut a round trip on overload to what the gateway took, then one
more a round trip; shared by the senders that report; bounded by the ceiling and the rate."""

from __future__ import annotations

import time

import fakeredis

from rxfleet.stores.inflight import IDLE_S, FleetInflight, Share, limit_in_force

RTT = 0.2


def _fleet(fake: fakeredis.FakeRedis, **kw: float) -> FleetInflight:
    return FleetInflight(fake, initial=int(kw.pop("initial", 64)),
                         ceiling=int(kw.pop("ceiling", 1024)), rate=kw.pop("rate", 0.0),
                         prefix="t")  # fmt: skip


def _full(fleet: FleetInflight, limit: int, who: str = "a") -> Share:
    """A period of a sender that used its whole share and wanted more."""
    return fleet.report(who, limit, 0, RTT, wanted=True)


def test_slow_start_grows_a_quarter_a_round_trip_until_the_ceiling(
    fake: fakeredis.FakeRedis,
) -> None:
    fleet, limit, seen = _fleet(fake, ceiling=300), 64, []
    for _ in range(12):
        limit = _full(fleet, limit).mine
        seen.append(limit)
    assert seen[:3] == [80, 100, 125]
    assert seen[-1] == 300 and max(seen) == 300
    assert limit_in_force(fake, "t") == 300


def test_a_sender_that_wanted_no_more_does_not_grow_it(fake: fakeredis.FakeRedis) -> None:
    fleet = _fleet(fake)
    assert fleet.report("a", 10, 0, RTT, wanted=False).mine == 64


def test_overload_cuts_to_below_what_the_gateway_took_once_a_round_trip(
    fake: fakeredis.FakeRedis,
) -> None:
    fleet = _fleet(fake, initial=200)
    cut = fleet.report("a", 40, 3, RTT, wanted=True, at_overload=150).mine
    assert cut == 135  # 0.9 x the 150 in flight when the gateway began refusing
    again = fleet.report("a", 40, 5, RTT, wanted=True, at_overload=140).mine
    assert again == 135  # the same overshoot: no second cut within the round trip


def test_after_a_cut_it_climbs_one_a_round_trip(fake: fakeredis.FakeRedis) -> None:
    fleet = _fleet(fake, initial=200)
    limit = fleet.report("a", 40, 3, RTT, wanted=True, at_overload=150).mine
    climbed = [limit := _full(fleet, limit).mine for _ in range(5)]
    assert climbed == [136, 137, 138, 139, 140]


def test_rising_latency_cuts_before_the_gateway_refuses(fake: fakeredis.FakeRedis) -> None:
    fleet = _fleet(fake, initial=100)
    assert _full(fleet, 100).mine == 125  # base latency 0.2 s learned
    slow = fleet.report("a", 125, 0, 2 * RTT + 0.1, wanted=True).mine
    assert slow == 112  # 0.9 x 125: the gateway queues


def test_senders_share_the_limit(fake: fakeredis.FakeRedis) -> None:
    fleet = _fleet(fake, initial=64)
    one = fleet.report("a", 1, 0, RTT, wanted=False)
    two = fleet.report("b", 1, 0, RTT, wanted=False)
    assert (one.limit, one.senders, one.mine) == (64, 1, 64)
    assert (two.senders, two.mine) == (2, 32)


def test_a_rate_bounds_it_to_what_the_rate_fills_in_two_round_trips(
    fake: fakeredis.FakeRedis,
) -> None:
    fleet, limit = _fleet(fake, rate=100.0), 64
    for _ in range(10):
        limit = _full(fleet, limit).mine
    assert limit == 40  # 100 claims/s x 0.2 s x 2


def test_an_idle_fleet_forgets_its_senders_and_its_limit(fake: fakeredis.FakeRedis) -> None:
    _fleet(fake).report("a", 1, 0, RTT, wanted=False)
    assert 0 < fake.pttl("t:gateway:senders") <= 10_000  # 10 s after the last report
    assert 0 < fake.ttl("t:gateway:inflight") <= IDLE_S


def test_refusals_at_any_load_leave_each_sender_eight_in_flight(
    fake: fakeredis.FakeRedis,
) -> None:
    """A gateway that keeps refusing some claims (a 503 with no Retry-After at one in
    flight) is not a concurrency cap: the limit stops at 8 a sender."""
    fleet = _fleet(fake, initial=64)
    fleet.report("b", 1, 0, RTT, wanted=False)  # a second sender
    limits = []
    for _ in range(3):
        limits.append(fleet.report("a", 2, 1, RTT, wanted=True, at_overload=1).limit)
        time.sleep(RTT)  # past the one-cut-a-round-trip guard
    assert limits == [16, 16, 16]  # from 64: 8 a sender, two senders, and no lower
