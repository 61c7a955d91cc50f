"""The fleet-wide gateway rate: a shared token bucket (GCRA) that spaces every submit
worker's requests ``1 / RXFLEET_GATEWAY_RATE`` apart, so the fleet never sends the
gateway more than its contracted transactions a second.

A worker takes send slots for a window (``take``): the script moves a virtual
scheduling time (TAT) on by one interval a slot and hands back when the first is,
relative to the server's clock, so hosts whose clocks differ share one schedule.
Slots are never granted more than ``HORIZON_S`` ahead: a worker that asks when the
schedule is full is told how long to wait. The interval is ``1 / (rate x PACE)``:
paced a little under the rate so a request a few milliseconds late (scheduling
jitter) never makes one second's count at the gateway one over.

Key: ``{p}:gateway:rate:{gateway}`` (the TAT, microseconds; it expires when idle).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis
from redis.commands.core import Script

from rxfleet.stores import lua
from rxfleet.stores.connection import as_text

HORIZON_S = 0.5
PACE = 0.98


@dataclass(frozen=True)
class Slots:
    """``count`` send slots: the first ``first`` s from now, then one every ``interval`` s;
    none granted: ask again in ``wait`` s."""

    count: int
    first: float
    interval: float
    wait: float = 0.0


@dataclass
class GatewayRate:
    client: redis.Redis
    rate: float
    prefix: str = "rx"
    gateway: str = "gateway"
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "rate", ("take",))

    @property
    def key(self) -> str:
        return f"{self.prefix}:gateway:rate:{self.gateway}"

    @property
    def interval(self) -> float:
        return 1.0 / (self.rate * PACE)

    def take(self, n: int) -> Slots:
        """Up to ``n`` slots (fewer when the schedule is full up to the horizon)."""
        micros = max(1, round(self.interval * 1e6))
        args = [n, micros, round(HORIZON_S * 1e6)]
        granted, first, wait = self._scripts["take"](keys=[self.key], args=args)
        return Slots(int(granted), int(first) / 1e6, micros / 1e6, max(0, int(wait)) / 1e6)

    def schedule(self, n: int) -> list[float]:
        """Monotonic times at which to send ``n`` requests, waiting for room as needed."""
        times: list[float] = []
        while len(times) < n:
            now = time.monotonic()
            slots = self.take(n - len(times))
            if slots.count == 0:
                time.sleep(max(slots.wait, 0.001))
                continue
            times += [now + slots.first + i * slots.interval for i in range(slots.count)]
        return times

    def ahead(self) -> float:
        """Seconds the schedule runs ahead of now (0: idle)."""
        tat = as_text(self.client.get(self.key))
        return 0.0 if tat is None else max(0.0, int(tat) / 1e6 - time.time())
