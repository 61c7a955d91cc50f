from __future__ import annotations

import fakeredis

from rxfleet.stores.breaker import Breaker


def _breaker(fake: fakeredis.FakeRedis, **over: float) -> Breaker:
    values = {"window": 60, "threshold": 0.005, "min_requests": 200, "cooldown": 5.0}
    values["rate_every"] = 0.0
    values.update(over)
    return Breaker(fake, "t", **values)  # type: ignore[arg-type]


def test_stays_closed_below_the_minimum_volume(fake: fakeredis.FakeRedis) -> None:
    breaker = _breaker(fake)
    for _ in range(10):
        breaker.record(False)
    assert breaker.state() == "closed" and breaker.gate() == (0.0, False)


def test_opens_past_the_threshold_and_holds_everyone(fake: fakeredis.FakeRedis) -> None:
    breaker = _breaker(fake)
    for _ in range(400):
        breaker.record(True)
    breaker.record(False)
    breaker.record(False)
    assert breaker.state() == "closed"  # 2 of 402 = 0.497%: not past 0.5%
    breaker.record(False)
    assert breaker.state() == "open"
    wait, probe = breaker.gate()
    assert 4.0 < wait <= 5.0 and not probe


def test_half_open_lets_exactly_one_probe_through(fake: fakeredis.FakeRedis) -> None:
    breaker = _breaker(fake, min_requests=1, threshold=0.0)
    breaker.record(False)
    fake.delete(breaker._key("open"))  # the cool-down ends
    assert breaker.state() == "half-open"
    assert breaker.gate() == (0.0, True)
    assert breaker.gate() == (1.0, False)  # the others keep waiting
    breaker.record(True, probe=True)
    assert breaker.state() == "closed" and breaker.failure_rate() == 0.0


def test_a_failed_probe_reopens_for_twice_as_long(fake: fakeredis.FakeRedis) -> None:
    breaker = _breaker(fake, min_requests=1, threshold=0.0, cooldown=2.0)
    breaker.record(False)
    fake.delete(breaker._key("open"))
    _, probe = breaker.gate()
    breaker.record(False, probe=probe)
    wait, _ = breaker.gate()
    assert breaker.state() == "open" and 3.0 < wait <= 4.0
