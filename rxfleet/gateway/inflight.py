"""A submit worker process's requests in flight: a gate whose size can change while
requests hold it, and the period of answers it reports to find the right size.

The size comes from the fleet (``rxfleet.stores.inflight``, through an ``Adapt``
callable the context wires up): every period (as many answers as the gate holds,
about one round trip) the sender reports what it heard and gets its share back. The
first overload answer of a period (a 429 or 503 with no Retry-After) ends it at once:
the gate shrinks below what was in flight then, before the requests waiting for a
slot are refused too, and the fleet hears of it.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field

from rxfleet.errors import GatewayUnavailable, RateLimited

#: The share of the requests in flight at an overload that the gate keeps at once.
KEEP = 0.9


@dataclass(frozen=True)
class Period:
    """What one sender heard since its last report."""

    sent: int  # answers heard
    overloaded: int  # of them a 429 or 503 with no Retry-After
    latency: float | None  # the median of the others, seconds (None: no other)
    wanted: bool  # requests waited for a slot: the sender wanted more in flight
    at_overload: int = 0  # requests in flight when the first overload answer came


#: A period reported; this sender's share of the fleet's limit back.
Adapt = Callable[[Period], int]


def overloaded(result: object, status: int | None) -> bool:
    """A 429 or an HTTP 503 with no Retry-After: the gateway refusing what it cannot
    take without naming a pause (with one, the fleet pauses instead; a transport
    failure is no answer at all)."""
    if status not in (429, 503) or not isinstance(result, RateLimited | GatewayUnavailable):
        return False
    return result.retry_after is None


class Gate:
    """At most ``limit`` holders at once (in the event loop); ``resize`` may change it
    while held: a smaller limit lets no one new in until enough have left."""

    def __init__(self, limit: int) -> None:
        self.limit, self.busy, self.waited = limit, 0, False
        self._free = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._free:
            if self.busy >= self.limit:
                self.waited = True
                await self._free.wait_for(lambda: self.busy < self.limit)
            self.busy += 1

    async def __aexit__(self, *_: object) -> None:
        async with self._free:
            self.busy -= 1
            self._free.notify()

    async def resize(self, limit: int) -> None:
        async with self._free:
            grew, self.limit = limit > self.limit, max(1, limit)
            if grew:
                self._free.notify_all()


@dataclass
class Tally:
    """The answers of the current period."""

    sent: int = 0
    overloaded: int = 0
    at_overload: int = 0
    seconds: list[float] = field(default_factory=list)

    def observe(self, seconds: float, *, overload: bool, busy: int) -> None:
        """One answer; ``busy``: the requests still in flight as it came."""
        self.sent += 1
        if overload:
            self.overloaded += 1
            self.at_overload = self.at_overload or busy + 1
        else:
            self.seconds.append(seconds)

    def period(self, *, wanted: bool) -> Period:
        latency = statistics.median(self.seconds) if self.seconds else None
        return Period(self.sent, self.overloaded, latency, wanted, self.at_overload)
