"""The fleet-wide gateway rate (``RXFLEET_GATEWAY_RATE``, claims a second): one
schedule in Redis (GCRA) that spaces every submit worker's requests at least one
interval apart, so the fleet never sends the gateway more than its contracted
transactions a second.

A request takes its slot right before it goes out (``take``), and only for now: the
script grants it when the last slot is at least one interval old on the Redis
server's clock (so hosts whose clocks differ share one schedule), else says how long
until the next. The interval is ``1 / (rate x PACE)``, a little under the rate; a
sender that wakes up to ``SLACK_S`` late keeps the schedule, one later than that
takes the next slot then, never the ones it missed (no catch-up burst). Why no one-
second window holds more than the rate: the slot after ``n`` others is at least
``n x interval - SLACK_S`` after the first, so a second holds at most
``(1 + SLACK_S) x rate x PACE`` (0.96 x the rate) slots; the rest of the second,
40 ms, is for the wire: a request that leaves or arrives later than its slot, not
the one after it (measured on the sandbox, a threaded server on a loaded 2-core
machine: up to a few tens of milliseconds).

Keys: ``{p}:gateway:rate`` (the next slot's time, microseconds; it expires when idle)
and ``{p}:gateway:rate:limit`` (the rate the fleet sends at, claims a second, for
``rxfleet stats``; it expires a minute after the last slot asked for).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from redis.commands.core import Script

from rxfleet.stores import lua
from rxfleet.stores.connection import as_text

PACE = 0.95
SLACK_S = 0.01  # see above: (1 + SLACK_S) x PACE = 0.96


@dataclass(frozen=True)
class Slot:
    """A send slot now (``granted``), or none: the next is ``seconds`` from now."""

    granted: bool
    seconds: float


@dataclass
class GatewayRate:
    client: redis.Redis
    rate: float
    prefix: str = "rx"
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "rate", ("take",))

    @property
    def key(self) -> str:
        return f"{self.prefix}:gateway:rate"

    @property
    def limit_key(self) -> str:
        return limit_key(self.prefix)

    def take(self) -> Slot:
        """A slot for a request about to go out, or how long until the next."""
        micros = max(1, round(1e6 / (self.rate * PACE)))
        args: list[int | str] = [micros, round(SLACK_S * 1e6), repr(self.rate)]
        granted, seconds = self._scripts["take"](keys=[self.key, self.limit_key], args=args)
        return Slot(bool(granted), max(0, int(seconds)) / 1e6)


def limit_key(prefix: str) -> str:
    return f"{prefix}:gateway:rate:limit"


def rate_in_force(client: redis.Redis, prefix: str) -> float | None:
    """The rate the fleet's submit workers sent at within the last minute (None: none)."""
    text = as_text(client.get(limit_key(prefix)))
    return None if text is None else float(text)
