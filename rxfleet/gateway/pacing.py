"""Pacing requests to a rate-limited server: its ``X-RateLimit-*`` headers before it
has to say 429, its ``Retry-After`` when it does.

Pure (a clock is given): ``Pacer.observe`` reads each answer's headers and, once
``X-RateLimit-Remaining`` is down to the reserve, holds the next request until
``X-RateLimit-Reset`` has passed; ``Pacer.refused`` holds it for ``Retry-After``
(or, without one, exponential backoff with jitter); ``Pacer.delay`` says how long
the next request must wait. Between those points requests go at once: a window's
allowance is spent as needed, then the window's end is awaited.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: Added to every wait for a window's end: the server's clock is not ours.
MARGIN = 0.02
#: An ``X-RateLimit-Reset`` this large is an epoch time, not seconds.
_EPOCH = 1_000_000_000


@dataclass(frozen=True)
class RateLimit:
    """A server's ``X-RateLimit-Remaining`` (requests left in its window) and
    ``X-RateLimit-Reset`` (seconds until the window starts again); None when absent."""

    remaining: int | None = None
    reset: float | None = None

    @classmethod
    def of(cls, headers: Mapping[str, str], now: float | None = None) -> RateLimit:
        """From response headers; a value that is not a number counts as absent."""
        remaining = _number(headers.get("X-RateLimit-Remaining"))
        reset = _number(headers.get("X-RateLimit-Reset"))
        if reset is not None and reset > _EPOCH:
            reset = max(0.0, reset - (time.time() if now is None else now))
        return cls(int(remaining) if remaining is not None else None, reset)


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 and value != float("inf") else None


@dataclass
class Pacer:
    """When the next request may go (see the module docstring)."""

    reserve: int = 0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    retry_after_cap: float = 900.0
    clock: Callable[[], float] = time.monotonic
    not_before: float = 0.0
    failures: int = 0
    paced: float = field(default=0.0)  # seconds held by the headers, in all

    def observe(self, limit: RateLimit) -> float:
        """An answer came with ``limit``: the hold it causes (0 while requests remain)."""
        self.failures = 0
        if limit.remaining is None or limit.reset is None or limit.remaining > self.reserve:
            return 0.0
        hold = limit.reset + MARGIN
        self.not_before = max(self.not_before, self.clock() + hold)
        self.paced += hold
        return hold

    def refused(self, retry_after: float | None) -> float:
        """A 429 or 503: hold for ``retry_after`` (capped), else back off; the hold."""
        self.failures += 1
        if retry_after is not None:
            hold = min(retry_after, self.retry_after_cap)
        else:
            ceiling = min(self.backoff_cap, self.backoff_base * 2.0 ** (self.failures - 1))
            hold = random.uniform(ceiling / 2, ceiling)
        self.not_before = max(self.not_before, self.clock() + hold)
        return hold

    def delay(self) -> float:
        """Seconds the next request must wait."""
        return max(0.0, self.not_before - self.clock())
