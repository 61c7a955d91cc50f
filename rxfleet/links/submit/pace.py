"""This process's part of the fleet's pace: its share of the gateway's in-flight limit
and its send slots under the gateway's rate.

The limit is the fleet's (``rxfleet.stores.inflight``): after every window the
process reports what it heard and takes its new share, which sizes both its
windows and the sender's gate. The rate is the fleet's too
(``rxfleet.stores.rate``): every request, a 401 replay included, gets a send slot
before it goes out.
"""

from __future__ import annotations

import threading
from typing import Protocol

from rxfleet.stores.inflight import InflightLimit, Window
from rxfleet.stores.rate import GatewayRate


class Gated(Protocol):
    """The sender's gate: its size and whether requests queued at it."""

    def resize(self, size: int) -> None: ...

    def demand(self) -> tuple[int, bool]: ...


class Pacer:
    """The process's share of the fleet's in-flight limit, and its send slots."""

    def __init__(
        self, limit: InflightLimit, rate: GatewayRate | None, gate: Gated, process: str
    ) -> None:
        self.limit, self.rate, self.gate, self.process = limit, rate, gate, process
        self._lock = threading.Lock()
        self.share = limit.share(limit.state()["limit"], 1)
        gate.resize(self.share)

    def window(self) -> int:
        """Claims a window takes: the process's share of the limit."""
        return self.share

    def schedule(self, n: int) -> list[float]:
        """Monotonic send times for ``n`` requests (0.0: at once, when no rate is set)."""
        return [0.0] * n if self.rate is None else self.rate.schedule(n)

    def observe(self, window: Window) -> None:
        """Report a window's outcome and take the new share."""
        if window.answered + window.throttled == 0:
            return
        limit, procs = self.limit.observe(self.process, window)
        share = self.limit.share(limit, procs)
        with self._lock:  # a throttled window never gives back what its 429s took off
            self.share = min(self.share, share) if window.throttled else share
            self.gate.resize(self.share)

    def shrink(self) -> None:
        """A 429 just heard: one slot less at once (each throttled answer frees its slot
        at once, so without this a window over the cap would spin through 429s until its
        report cut the fleet's limit)."""
        with self._lock:
            self.share = max(1, self.share - 1)
            self.gate.resize(self.share)

    def full(self) -> bool:
        """Whether requests queued at the gate since the last look (the share was used)."""
        return self.gate.demand()[1]
