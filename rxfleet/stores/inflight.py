"""The fleet-wide in-flight limit of one gateway: how many requests every submit worker
together keeps in flight, found by the fleet itself (AIMD with a latency gradient).

Each submit worker reports every window (``observe``): how many requests were
answered, how many throttled (429, or 503 with Retry-After), their mean latency, and
whether it kept its share in flight. One Lua script moves the shared limit:

* a 429/503 cuts it, by ``BETA`` times the share of the window that was answered
  (never below 0.6 in one cut), at most once per two round trips (windows sent
  before a cut still report what caused it);
* a latency above ``TOLERANCE`` times the baseline (the least latency seen, drifting
  up slowly; never taken below ``NOISE_MS``) cuts it by ``BETA_LATENCY``: the gateway
  is queueing, before it has to say so;
* otherwise a worker that used its share grows it: by a quarter of the answers while no cut
  has happened yet (slow start: x1.25 a round trip), then by one a round trip (1% of
  the limit a round trip above 100).

It stays between ``RXFLEET_INFLIGHT_FLOOR`` and ``RXFLEET_INFLIGHT_CEILING``, and under
``RXFLEET_GATEWAY_RATE`` x baseline latency x ``RATE_HEADROOM`` when a rate is set
(more in flight than that only waits for its slot). Each live process (one that
reported in the last ``LIVE_MS``) sends an equal share.

Keys: ``{p}:gateway:inflight:{gateway}`` (a hash: ``limit``, ``base`` latency ms,
``cut_at``, ``slow``, ``cuts``, ``procs``) and ``{p}:gateway:inflight:{gateway}:procs``
(the live processes); both expire an hour after the last report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import redis
from redis.commands.core import Script

from rxfleet.stores import lua
from rxfleet.stores.connection import as_dict, as_text

START = 64  # the limit a fleet starts from (slow start finds the rest)
LIVE_MS = 10_000
TTL_MS = 3_600_000
TOLERANCE = 2.0
NOISE_MS = 10.0
BETA = 0.9
BETA_LATENCY = 0.95
DRIFT = 0.01
RATE_HEADROOM = 1.5


@dataclass(frozen=True)
class Window:
    """One window's outcome, as a submit worker reports it."""

    answered: int
    throttled: int
    latency_ms: float | None  # mean of the answered; None when none was
    full: bool  # the process kept its share in flight


@dataclass
class InflightLimit:
    client: redis.Redis
    prefix: str = "rx"
    gateway: str = "gateway"
    floor: int = 4
    ceiling: int = 1024
    rate: float | None = None
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "inflight", ("observe",))

    @property
    def key(self) -> str:
        return f"{self.prefix}:gateway:inflight:{self.gateway}"

    def observe(self, process: str, window: Window) -> tuple[float, int]:
        """Report a window; the fleet's limit now and how many processes share it."""
        latency = -1.0 if window.latency_ms is None else window.latency_ms
        args: list[str | float] = [
            process, window.answered, window.throttled, latency, int(window.full), self.floor,
            self.ceiling, self.rate or 0, self.start, LIVE_MS, TTL_MS, TOLERANCE, NOISE_MS, BETA,
            BETA_LATENCY, DRIFT, RATE_HEADROOM,
        ]  # fmt: skip
        limit, procs = self._scripts["observe"](keys=[self.key, f"{self.key}:procs"], args=args)
        return float(str(as_text(limit))), int(procs)

    @property
    def start(self) -> int:
        return max(self.floor, min(self.ceiling, START))

    def share(self, limit: float, procs: int) -> int:
        """One process's share of ``limit``: at least one."""
        return max(1, math.ceil(limit / max(1, procs)))

    def state(self) -> dict[str, float]:
        """The limit as ``rxfleet stats`` shows it: ``limit``, ``base_ms``, ``cuts``,
        ``procs`` (the start, before any report)."""
        raw = as_dict(self.client.hgetall(self.key))
        numbers = {k: float(v) for k, v in raw.items() if k in ("limit", "base", "cuts", "procs")
                   and v}  # fmt: skip
        return {
            "limit": numbers.get("limit", float(self.start)),
            "base_ms": numbers.get("base", 0.0),
            "cuts": numbers.get("cuts", 0.0),
            "procs": numbers.get("procs", 0.0),
        }

    def clear(self) -> None:
        self.client.delete(self.key, f"{self.key}:procs")
