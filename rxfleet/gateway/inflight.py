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
import contextlib
import heapq
import itertools
import statistics
from collections.abc import AsyncIterator, Callable
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
    while held: a smaller limit lets no one new in until enough have left.

    A slot that frees goes to the waiter of the lowest rank, the oldest first among
    equals; never to a request that arrives meanwhile. The submit link ranks a
    batch's requests by when this delivery of its task started (a retried one ranks
    as new), so in a worker holding several batches
    the oldest batch's windows go first and batches finish in turn (each then on to
    the record link while the others are sent). Shared alike, a window of each batch
    in turn, every batch of the worker finished together, at the end.
    """

    def __init__(self, limit: int) -> None:
        self.limit, self.busy, self.waited = limit, 0, False
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @contextlib.asynccontextmanager
    async def slot(self, rank: float = 0.0) -> AsyncIterator[None]:
        await self._enter(rank)
        try:
            yield
        finally:
            self._leave()

    async def __aenter__(self) -> None:
        await self._enter(0.0)

    async def __aexit__(self, *_: object) -> None:
        self._leave()

    async def resize(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._hand_over()

    async def _enter(self, rank: float) -> None:
        if self.busy < self.limit and not self._waiting:
            self.busy += 1
            return
        self.waited = True
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (rank, next(self._arrivals), turn))
        try:
            await turn  # the slot is handed over: ``busy`` counts it already
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self._leave()  # handed over as it was cancelled: pass it on
            raise

    def _leave(self) -> None:
        self.busy -= 1
        self._hand_over()

    def _hand_over(self) -> None:
        """Free slots to the waiters in rank order (a cancelled waiter is passed by)."""
        while self._waiting and self.busy < self.limit:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                self.busy += 1
                turn.set_result(None)


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
