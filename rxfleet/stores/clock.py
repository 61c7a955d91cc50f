"""The fleet's clock: the Redis server's, carried by this process's monotonic clock.

Leases, message visibility, batch ages, token expiry, pauses and breaker buckets
compare times that different hosts wrote. Each process reads Redis's ``TIME`` once
at start (``follow``) and from then on counts ``monotonic`` from it, so a host
clock stepped while the process runs (a bad NTP step, an operator's ``date -s``)
moves nothing the fleet decides. It reads ``TIME`` again every ``RESYNC_S`` (to
bound the drift of the monotonic clock) and says once when the host's clock has
moved away from Redis's since it last looked. Before ``follow`` (unit tests, the
embedded default before Redis starts) it is the host's clock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

import redis

log = logging.getLogger("rxfleet.clock")

#: Seconds between two reads of Redis's clock once followed.
RESYNC_S = 10.0
#: Seconds a read of Redis's clock may take before it is given up (the last one stays).
READ_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class Reading:
    """One read of Redis's clock: its epoch seconds at this process's monotonic
    ``at``; the host's clock minus Redis's then, and the read's uncertainty."""

    epoch: float
    at: float
    skew: float
    doubt: float


def read(client: redis.Redis) -> Reading:
    """Read Redis's ``TIME`` once, placed at the midpoint of the round trip."""
    wall, before = time.time(), time.monotonic()
    seconds, micros = client.time()
    after = time.monotonic()
    mid = (before + after) / 2
    epoch = int(seconds) + int(micros) / 1e6
    return Reading(epoch, mid, wall + (mid - before) - epoch, (after - before) / 2)


class FleetClock:
    """Redis's clock in this process (see the module)."""

    def __init__(self) -> None:
        self._client: redis.Redis | None = None
        self._last: Reading | None = None
        self._step_warn = 5.0
        self._after_fork()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._reading = False  # a resync thread is on its way (none crosses a fork)

    def follow(self, client: redis.Redis, step_warn: float) -> Reading:
        """Take Redis's clock from now on; the first reading (its ``skew`` is the host's).
        Later readings go through a client of their own with short timeouts."""
        reading = read(client)
        with self._lock:
            self._client, self._last, self._step_warn = quick(client), reading, step_warn
        return reading

    def forget(self) -> None:
        """Back to the host's clock (tests; a process that lets Redis go)."""
        with self._lock:
            self._client, self._last = None, None

    def now(self) -> float:
        """Epoch seconds on Redis's clock (the host's, before ``follow``). Never waits on
        Redis: a reading older than ``RESYNC_S`` is renewed by a thread of its own
        (the caller may be kombu's event loop), and until then the last one serves."""
        last = self._last
        if last is None:
            return time.time()
        if time.monotonic() - last.at > RESYNC_S:
            self._resync_soon()
        return last.epoch + (time.monotonic() - last.at)

    def _resync_soon(self) -> None:
        with self._lock:
            if self._reading or self._client is None:
                return
            self._reading = True
        threading.Thread(target=self.resync, name="fleet-clock", daemon=True).start()

    def resync(self) -> None:
        """Read Redis's clock again; say once when the host's clock moved meanwhile.
        Redis away or slow: the last reading stays (the monotonic clock carries it)."""
        try:
            client, last = self._client, self._last
            if client is None or last is None:
                return
            try:
                fresh = read(client)
            except redis.RedisError:
                return
            if abs(fresh.skew - last.skew) > self._step_warn:
                log.warning(
                    "this host's clock moved %+.1f s (now %+.1f s off the Redis server's); "
                    "the fleet keeps Redis's clock: sync this host (NTP, chrony)",
                    fresh.skew - last.skew, fresh.skew,
                )  # fmt: skip
            self._last = fresh
        finally:
            with self._lock:
                self._reading = False


def quick(client: redis.Redis, seconds: float = READ_TIMEOUT_S) -> redis.Redis:
    """A client to the same server as ``client`` whose reads give up after ``seconds``
    (the process's own clients may wait far longer): for callers that must not stall."""
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": seconds,
              "socket_connect_timeout": seconds}  # fmt: skip
    return redis.Redis(connection_pool=redis.ConnectionPool(pool.connection_class, **kwargs))


CLOCK = FleetClock()


def now() -> float:
    """Epoch seconds on the fleet's clock (Redis's once the process follows it)."""
    return CLOCK.now()
