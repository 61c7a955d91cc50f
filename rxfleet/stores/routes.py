"""The route memo: what the fleet learnt about each BIN/PCN from the gateway.

A 404 means the gateway has no route for the pair: it is remembered as a miss
for ``ttl`` seconds, so later claims to it are rejected 04 with no network
call. A pair that answered is remembered as good, so the hot path pays no probe.
A pair not yet known either way is found out by one request at a time across
the fleet (a SET NX probe), so batches starting together do not each pay a 404.

Keys: ``{p}:gateway:miss:{bin}:{pcn}``, ``{p}:gateway:route:{bin}:{pcn}``
(both expire after ``ttl``), ``{p}:gateway:probe:{bin}:{pcn}`` (a probe's lease).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import redis

from rxfleet.stores.connection import Decoder, Pipeline

PROBE_LEASE_MS = 30_000  # a probe's holder that died frees the route after this
PROBE_POLL = 0.005


class RouteState(StrEnum):
    KNOWN = "known"  # answered before: send
    MISS = "miss"  # 404 before: reject 04, no network call
    PROBE = "probe"  # unknown, and this caller finds out (then ``release``)
    BUSY = "busy"  # unknown, and another caller is finding out: come back later


@dataclass
class RouteMemo:
    client: redis.Redis
    prefix: str = "rx"
    ttl: int = 600

    def _miss(self, bin_: str, pcn: str) -> str:
        return f"{self.prefix}:gateway:miss:{bin_}:{pcn}"

    def _ok(self, bin_: str, pcn: str) -> str:
        return f"{self.prefix}:gateway:route:{bin_}:{pcn}"

    def _probe(self, bin_: str, pcn: str) -> str:
        return f"{self.prefix}:gateway:probe:{bin_}:{pcn}"

    def read(self, pipe: Pipeline, bin_: str, pcn: str) -> Decoder[RouteState | None]:
        """Queue the pair's two reads on ``pipe``; the decoder says KNOWN or MISS,
        or None when the pair is unknown."""
        at = len(pipe)
        pipe.exists(self._miss(bin_, pcn))
        pipe.exists(self._ok(bin_, pcn))
        return lambda replies: _state(replies[at], replies[at + 1])

    def state(self, bin_: str, pcn: str) -> RouteState | None:
        pipe = self.client.pipeline(transaction=False)
        decode = self.read(pipe, bin_, pcn)
        return decode(pipe.execute())

    def probe(self, bin_: str, pcn: str, patience: float) -> RouteState:
        """Take the pair's probe, or wait up to ``patience`` s for another's answer."""
        deadline = time.monotonic() + patience
        key = self._probe(bin_, pcn)
        while not self.client.set(key, "1", nx=True, px=PROBE_LEASE_MS):
            learnt = self.state(bin_, pcn)
            if learnt is not None:
                return learnt
            if time.monotonic() > deadline:
                return RouteState.BUSY
            time.sleep(PROBE_POLL)
        learnt = self.state(bin_, pcn)  # answered just before its probe was given back
        if learnt is not None:
            self.release(bin_, pcn)
            return learnt
        return RouteState.PROBE

    def release(self, bin_: str, pcn: str) -> None:
        """Give the pair's probe back (answered or not)."""
        self.client.delete(self._probe(bin_, pcn))

    def remember_miss(self, bin_: str, pcn: str) -> None:
        self.client.set(self._miss(bin_, pcn), "1", ex=self.ttl)

    def remember_ok(self, bin_: str, pcn: str) -> None:
        self.client.set(self._ok(bin_, pcn), "1", ex=self.ttl)

    def clear(self) -> None:
        for key in self.client.scan_iter(f"{self.prefix}:gateway:*:*:*"):
            self.client.delete(key)


def _state(missed: object, known: object) -> RouteState | None:
    if missed:
        return RouteState.MISS
    return RouteState.KNOWN if known else None
