"""The fleet's clock: Redis's, carried by the monotonic clock; a host clock stepped
while the process runs moves nothing, and is said once when next compared."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import fakeredis
import pytest
import redis

from rxfleet.stores import clock
from rxfleet.stores.clock import FleetClock


@pytest.fixture
def fleet_clock() -> Iterator[FleetClock]:
    yield clock.CLOCK
    clock.CLOCK.forget()


def _step(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The host's clock moved by ``seconds`` (Redis's and the monotonic clock not)."""
    wall = time.time
    monkeypatch.setattr(time, "time", lambda: wall() + seconds)


def test_before_following_redis_it_is_the_hosts_clock(fleet_clock: FleetClock) -> None:
    assert abs(clock.now() - time.time()) < 0.05


def test_a_host_clock_stepped_while_running_moves_nothing(
    fleet_clock: FleetClock, fake: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = time.time
    reading = fleet_clock.follow(fake, 5.0)
    assert abs(reading.skew) < 0.05  # fakeredis answers TIME from this host
    _step(monkeypatch, 600.0)
    assert abs(clock.now() - real()) < 0.05  # still Redis's time, not the host's +600


def test_the_step_is_said_once_when_redis_is_read_again(
    fleet_clock: FleetClock,
    fake: fakeredis.FakeRedis,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = time.time
    monkeypatch.setattr(clock, "quick", lambda client: client)  # resync reads ``fake``
    fleet_clock.follow(fake, 5.0)
    wall = time.time
    # the host moves; Redis (here on the same host) is read at the real time
    monkeypatch.setattr(fake, "time", lambda: divmod(int(real() * 1e6), 1_000_000))
    monkeypatch.setattr(time, "time", lambda: wall() + 600.0)
    with caplog.at_level(logging.WARNING, logger="rxfleet.clock"):
        for _ in range(3):
            fleet_clock.resync()
            assert abs(clock.now() - real()) < 0.05
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1 and "moved +600.0 s" in said[0], said


def test_a_stale_reading_is_renewed_without_making_the_caller_wait(
    fleet_clock: FleetClock, fake: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller may be kombu's event loop: a slow or unreachable Redis never holds it."""
    monkeypatch.setattr(clock, "quick", lambda client: client)
    fleet_clock.follow(fake, 5.0)
    monkeypatch.setattr(clock, "RESYNC_S", 0.0)
    answered = threading.Event()

    def slow() -> tuple[int, int]:
        time.sleep(1.0)
        answered.set()
        return divmod(int(time.time() * 1e6), 1_000_000)

    monkeypatch.setattr(fake, "time", slow)
    started = time.monotonic()
    for _ in range(100):
        clock.now()
    assert time.monotonic() - started < 0.2  # one thread reads; nobody waits for it
    assert answered.wait(5)


def test_redis_away_at_a_resync_keeps_the_last_reading(
    fleet_clock: FleetClock, fake: fakeredis.FakeRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(clock, "quick", lambda client: client)
    fleet_clock.follow(fake, 5.0)

    def away() -> tuple[int, int]:
        raise redis.ConnectionError("away")

    monkeypatch.setattr(fake, "time", away)
    _step(monkeypatch, -600.0)
    fleet_clock.resync()
    assert abs(clock.now() - (time.time() + 600.0)) < 0.05


def test_later_reads_give_up_quickly() -> None:
    """The resync's own client: a read of Redis's clock waits at most two seconds."""
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_timeout=None)
    quick = clock.quick(client)
    kwargs = quick.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == kwargs["socket_connect_timeout"] == clock.READ_TIMEOUT_S
    assert kwargs["port"] == 1 and kwargs["host"] == "127.0.0.1"
