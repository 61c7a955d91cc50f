"""A circuit breaker shared by the whole fleet through Redis.

Closed: requests flow; each outcome lands in one-second buckets. When the
failure rate over the sliding window passes the threshold (default 0.5%, with
at least ``min_requests`` in the window), the breaker opens: nobody sends for
the cool-down, the batches wait with countdowns. Then it is half-open: exactly
one worker (SET NX) sends a probe; success closes it and clears the window,
failure opens it again for twice the cool-down (capped).

Failures are what a healthy gateway does not do: 5xx without Retry-After,
timeouts, dropped connections, and a 401 that a fresh token did not cure. A
429/503 with Retry-After is the gateway asking for a pause, and the fleet
pause handles it; a 401 cured by one rotation is the token lifecycle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import redis

from rxfleet.stores.connection import as_dict, as_text

PROBE_TIMEOUT_MS = 10_000  # a probe holder that died frees the half-open state
FLUSH_EVERY = 25  # successes are counted in batches: one write per 25 healthy answers


@dataclass
class Breaker:
    client: redis.Redis
    prefix: str = "rx"
    window: int = 60
    threshold: float = 0.005
    min_requests: int = 200
    cooldown: float = 15.0
    cooldown_max: float = 300.0

    _healthy: int = 0  # successes not yet written (flushed every FLUSH_EVERY, and on failure)

    def _key(self, name: str) -> str:
        return f"{self.prefix}:breaker:{name}"

    def _bucket(self, second: int) -> str:
        return f"{self.prefix}:breaker:w:{second}"

    def read(self, pipe: Any) -> None:
        """Queue the gate's two reads on ``pipe`` (one round trip with the caller's)."""
        pipe.pttl(self._key("open"))
        pipe.exists(self._key("tripped"))

    def decide(self, remaining: object, tripped: object) -> tuple[float, bool]:
        """(seconds to wait, whether this caller is the half-open probe), from ``read``."""
        if isinstance(remaining, int) and remaining > 0:
            return remaining / 1000, False
        if not tripped:
            return 0.0, False
        if self.client.set(self._key("probe"), "1", nx=True, px=PROBE_TIMEOUT_MS):
            return 0.0, True
        return 1.0, False

    def gate(self) -> tuple[float, bool]:
        pipe = self.client.pipeline(transaction=False)
        self.read(pipe)
        return self.decide(*pipe.execute())

    def record(self, ok: bool, *, probe: bool = False) -> None:
        if probe:
            self.flush()
            self._close() if ok else self._trip()
            return
        if ok:
            self._healthy += 1
            if self._healthy >= FLUSH_EVERY:
                self.flush()
            return
        self.flush(failed=1)
        if self.failure_rate() > self.threshold:
            self._trip()

    def flush(self, failed: int = 0) -> None:
        """Write the buffered outcomes into this second's bucket."""
        total, self._healthy = self._healthy + failed, 0
        if not total:
            return
        bucket = self._bucket(int(time.time()))
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(bucket, "total", total)
        if failed:
            pipe.hincrby(bucket, "failed", failed)
        pipe.expire(bucket, self.window + 5)
        pipe.execute()

    def release_probe(self) -> None:
        """Give the half-open probe back unanswered (its caller was held or stopped)."""
        self.client.delete(self._key("probe"))

    def failure_rate(self) -> float:
        now = int(time.time())
        pipe = self.client.pipeline()
        for second in range(now - self.window + 1, now + 1):
            pipe.hmget(self._bucket(second), ["total", "failed"])
        total = failed = 0
        for pair in pipe.execute():
            total += int(pair[0] or 0)
            failed += int(pair[1] or 0)
        return failed / total if total >= self.min_requests else 0.0

    def counters(self) -> dict[str, int]:
        """How often the breaker opened and closed."""
        return {k: int(v) for k, v in as_dict(self.client.hgetall(self._key("stats"))).items()}

    def clear(self) -> None:
        for key in self.client.scan_iter(f"{self.prefix}:breaker:*"):
            self.client.delete(key)

    def state(self) -> str:
        if self.client.exists(self._key("open")):
            return "open"
        return "half-open" if self.client.exists(self._key("tripped")) else "closed"

    def _trip(self) -> None:
        previous = as_text(self.client.get(self._key("tripped")))
        cooldown = min(self.cooldown_max, float(previous) * 2) if previous else self.cooldown
        pipe = self.client.pipeline()
        pipe.set(self._key("open"), "1", px=int(cooldown * 1000))
        pipe.set(self._key("tripped"), repr(cooldown))
        pipe.delete(self._key("probe"))
        pipe.hincrby(self._key("stats"), "opened", 1)
        pipe.execute()

    def _close(self) -> None:
        now = int(time.time())
        pipe = self.client.pipeline()
        pipe.delete(self._key("tripped"), self._key("probe"), self._key("open"))
        for second in range(now - self.window + 1, now + 1):
            pipe.delete(self._bucket(second))
        pipe.hincrby(self._key("stats"), "closed", 1)
        pipe.execute()
