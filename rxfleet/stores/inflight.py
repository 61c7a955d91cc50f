"""The fleet's gateway in-flight limit: how many claim requests the whole fleet keeps
at the gateway at once, found while it sends, bounded by ``RXFLEET_GATEWAY_INFLIGHT_MAX``
and, under ``RXFLEET_GATEWAY_RATE``, by what the rate fills in two round trips.

Each submit worker process reports a period (about one round trip's worth of its
answers: as many as its share of the limit) and gets the fleet's limit back, with how
many processes share it; its share is the limit divided among them. One script,
atomic across the fleet, on the Redis server's clock (``inflight_adjust.lua``):

* **overload**: a 429 or 503 with no Retry-After in the period (the gateway refusing
  what it cannot take, without naming a pause) cuts the limit to 0.9 x the part that
  got through (at least half of it);
* **queueing**: the period's median latency above twice the gateway's base latency
  plus 50 ms (the gateway slowing down before it refuses) cuts it to 0.9 x;
* at most one cut a round trip, fleet-wide: one overshoot is one cut, however many
  requests it refused;
* never below 8 requests a sender (a gateway that refuses one claim whatever the load
  must not shut the fleet down to one request at a time), never above the ceiling;
* otherwise, when the sender had requests waiting for a slot (it wanted more), the
  limit grows: by a quarter a round trip until the first cut (slow start), then by
  one request a round trip, fleet-wide (additive increase);
* the base latency follows the lowest period medians and drifts up a tenth of the
  way towards a higher one each period (a gateway that became slower for good).

A limit the gateway set this way stays found for the next run; it is forgotten after
``IDLE_S`` without a report (the next run starts at ``RXFLEET_SUBMIT_INFLIGHT`` a
process again). A sender that cannot reach Redis keeps its share until it can.

Keys: ``{p}:gateway:inflight`` (hash: ``limit``, ``base`` latency ms, ``cut_at``,
``found``) and ``{p}:gateway:senders`` (sorted set: each process's last report).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import redis
from redis.commands.core import Script

from rxfleet.stores import lua
from rxfleet.stores.connection import as_text

IDLE_S = 600


@dataclass(frozen=True)
class Share:
    """The fleet's limit and one sender's part of it."""

    limit: int
    senders: int

    @property
    def mine(self) -> int:
        return max(1, math.ceil(self.limit / max(1, self.senders)))


@dataclass
class FleetInflight:
    client: redis.Redis
    initial: int
    ceiling: int
    rate: float = 0.0
    prefix: str = "rx"
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "inflight", ("adjust",))

    def report(
        self, sender: str, sent: int, overloaded: int, latency: float | None, *,
        wanted: bool, at_overload: int = 0,
    ) -> Share:  # fmt: skip
        """Report a period: answers heard, of them overloaded, the requests in flight at
        the first overload, the others' median latency (seconds), whether requests waited
        for a slot. The fleet's limit as it now stands comes back."""
        keys = [limit_key(self.prefix), f"{self.prefix}:gateway:senders"]
        micros = -1 if latency is None else round(latency * 1e6)
        args: list[str | int] = [
            sender, sent, overloaded, at_overload, micros, int(wanted),
            self.initial, self.ceiling, repr(self.rate), IDLE_S,
        ]  # fmt: skip
        limit, senders = self._scripts["adjust"](keys=keys, args=args)
        return Share(int(limit), int(senders))


def limit_key(prefix: str) -> str:
    return f"{prefix}:gateway:inflight"


def limit_in_force(client: redis.Redis, prefix: str) -> int | None:
    """The fleet's in-flight limit as last adjusted (None: no sender reported lately)."""
    text = as_text(client.hget(limit_key(prefix), "limit"))
    return None if text is None else int(float(text))
