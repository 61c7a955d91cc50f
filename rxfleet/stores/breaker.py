"""Circuit breakers shared by the whole fleet through Redis, one per kind of failure.

* ``health``: transport failures (timeouts, dropped connections) and 5xx without
  Retry-After, against every answer. Opens at a rate a lossy but working
  network passes (default 50%): a 20% fault rate slows the fleet by its
  retries, it does not stop it.
* ``auth``: 401s that a freshly rotated token did not cure, against every
  answer (seed 000's 0.5% REJ_001/REJ_004 alert threshold). A 401 cured by one
  rotation is the token lifecycle, not a failure.

A 429/503 with Retry-After is the gateway asking for a pause: the fleet pause
handles it, no breaker counts it.

Closed: requests flow; outcomes land in five-second buckets. When the failure
rate over the sliding window passes the threshold (with at least
``min_requests`` in the window) the breaker opens: nobody sends for the
cool-down. Then it is half-open: exactly one worker (SET NX) sends a probe;
success closes it and clears the window, failure opens it again for twice the
cool-down (capped).

Keys: ``{p}:breaker:{name}:open``, ``:tripped``, ``:probe``, ``:stats`` and the
buckets ``{p}:breaker:{name}:w:{bucket}``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import redis

from rxfleet.stores import clock
from rxfleet.stores.connection import Decoder, Pipeline, as_dict, as_text

PROBE_TIMEOUT_MS = 10_000  # a probe holder that died frees the half-open state
FLUSH_EVERY = 50  # successes are counted in batches: one write per 50 healthy answers
BUCKET = 5  # seconds per bucket of the sliding window


@dataclass
class Breaker:
    client: redis.Redis
    prefix: str = "rx"
    name: str = "health"
    window: int = 60
    threshold: float = 0.5
    min_requests: int = 20
    cooldown: float = 15.0
    cooldown_max: float = 300.0
    rate_every: float = 0.25  # seconds between two looks at the failure rate, per process
    _healthy: int = field(default=0, init=False)
    _looked: float = field(default=0.0, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _key(self, part: str) -> str:
        return f"{self.prefix}:breaker:{self.name}:{part}"

    def _bucket(self, index: int) -> str:
        return f"{self.prefix}:breaker:{self.name}:w:{index}"

    def _buckets(self) -> range:
        now = int(clock.now()) // BUCKET
        return range(now - self.window // BUCKET + 1, now + 1)

    def read(self, pipe: Pipeline) -> Decoder[tuple[float, bool]]:
        """Queue the gate's two reads on ``pipe`` (one round trip with the caller's).

        The decoder says (seconds to wait, whether this caller is the half-open
        probe); deciding a half-open breaker takes its probe (one more command).
        """
        at = len(pipe)
        pipe.pttl(self._key("open"))
        pipe.exists(self._key("tripped"))
        return lambda replies: self._decide(replies[at], replies[at + 1])

    def _decide(self, remaining: object, tripped: object) -> tuple[float, bool]:
        if isinstance(remaining, int) and remaining > 0:
            return remaining / 1000, False
        if not tripped:
            return 0.0, False
        if self.client.set(self._key("probe"), "1", nx=True, px=PROBE_TIMEOUT_MS):
            return 0.0, True
        return 1.0, False

    def gate(self) -> tuple[float, bool]:
        pipe = self.client.pipeline(transaction=False)
        decode = self.read(pipe)
        return decode(pipe.execute())

    def record(self, ok: bool, *, probe: bool = False) -> None:
        """Count one outcome (thread-safe); a probe's outcome closes or reopens at once."""
        if probe:
            self.flush(failed=0 if ok else 1)
            self._close() if ok else self._trip()
            return
        if ok:
            with self._lock:
                self._healthy += 1
                due = self._healthy >= FLUSH_EVERY
            if due:
                self.flush()
            return
        self.flush(failed=1)
        if self._time_to_look() and self.failure_rate() > self.threshold:
            self._trip()

    def _time_to_look(self) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._looked < self.rate_every:
                return False
            self._looked = now
            return True

    def flush(self, failed: int = 0) -> None:
        """Write the buffered outcomes into the current bucket."""
        with self._lock:
            total, self._healthy = self._healthy + failed, 0
        if not total:
            return
        bucket = self._bucket(int(clock.now()) // BUCKET)
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(bucket, "total", total)
        if failed:
            pipe.hincrby(bucket, "failed", failed)
        pipe.expire(bucket, self.window + BUCKET)
        pipe.execute()

    def release_probe(self) -> None:
        """Give the half-open probe back unanswered (its caller was held or stopped)."""
        self.client.delete(self._key("probe"))

    def failure_rate(self) -> float:
        pipe = self.client.pipeline(transaction=False)
        for index in self._buckets():
            pipe.hmget(self._bucket(index), ["total", "failed"])
        total = failed = 0
        for pair in pipe.execute():
            total += int(pair[0] or 0)
            failed += int(pair[1] or 0)
        return failed / total if total >= self.min_requests else 0.0

    def counters(self) -> dict[str, int]:
        """How often the breaker opened and closed."""
        return {k: int(v) for k, v in as_dict(self.client.hgetall(self._key("stats"))).items()}

    def clear(self) -> None:
        for key in self.client.scan_iter(f"{self.prefix}:breaker:{self.name}:*"):
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
        pipe = self.client.pipeline()
        pipe.delete(self._key("tripped"), self._key("probe"), self._key("open"))
        for index in self._buckets():
            pipe.delete(self._bucket(index))
        pipe.hincrby(self._key("stats"), "closed", 1)
        pipe.execute()
