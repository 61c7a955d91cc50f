"""The fleet's counters in Redis: one hash, ``{p}:metrics``, that every process adds to.

Why Redis and not each process's own prometheus registry: the CPU workers are
prefork (a registry per child, lost with the child), the fleet scales by adding
processes on several hosts, and Redis already is the fleet's shared memory. The
one exporter (``rxfleet metrics``) reads this hash, and live gauges, at scrape
time. Writes are per batch, never per claim:

* the record link counts the claims it retires from Redis inside the same Lua
  script that retires them (``RunStore.retire``): the count moves atomically
  with the run's done count, so a redelivered record link counts nothing twice;
* the submit link adds a batch round's request latencies, outcomes and its
  retry in one pipeline at the end of the round;
* the fleet pause counts itself in the pipeline that logs it.

Fields (``|`` separates a counter's name from its label values):

* ``claims|STATUS|ROUTE``, ``rejects|CODE``: recorded claims;
* ``latency_le|BOUND``, ``latency_count``, ``latency_sum_us``: gateway requests
  (buckets not cumulative here; the exporter sums them);
* ``requests|OUTCOME``: gateway requests by answer status or error class;
* ``retries|REASON``: submit rounds that asked to come back later;
* ``pauses``: fleet pauses set (429/503 with Retry-After).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis

from rxfleet.stores.connection import as_dict

#: Upper bounds (seconds) of the gateway latency buckets.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def metrics_key(prefix: str) -> str:
    return f"{prefix}:metrics"


def claim_fields(status: str, route: str, reject_codes: Iterable[str]) -> list[str]:
    """The counter fields one recorded claim adds one to."""
    return [f"claims|{status}|{route}", *(f"rejects|{code}" for code in reject_codes)]


def slug(text: str) -> str:
    """A label value from free text: ``fleet pause`` → ``fleet_pause``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "unknown"


@dataclass
class RequestTally:
    """A round's gateway requests, kept in the process until the round ends."""

    buckets: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    count: int = 0
    sum_us: int = 0

    def observe(self, seconds: float, outcome: str) -> None:
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        bound = "+Inf" if index == len(LATENCY_BUCKETS) else repr(LATENCY_BUCKETS[index])
        self.buckets[bound] += 1
        self.outcomes[outcome] += 1
        self.count += 1
        self.sum_us += int(seconds * 1_000_000)


@dataclass
class Counters:
    """A snapshot of the counters, parsed."""

    claims: dict[tuple[str, str], int] = field(default_factory=dict)
    rejects: dict[str, int] = field(default_factory=dict)
    latency_buckets: dict[str, int] = field(default_factory=dict)
    latency_count: int = 0
    latency_sum: float = 0.0
    requests: dict[str, int] = field(default_factory=dict)
    retries: dict[str, int] = field(default_factory=dict)
    pauses: int = 0

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """Prometheus' buckets: cumulative, ``+Inf`` last."""
        out, running = [], 0
        for bound in [*(repr(b) for b in LATENCY_BUCKETS), "+Inf"]:
            running += self.latency_buckets.get(bound, 0)
            out.append((bound, running))
        return out


@dataclass
class MetricsStore:
    client: redis.Redis
    prefix: str = "rx"

    @property
    def key(self) -> str:
        return metrics_key(self.prefix)

    def add_round(self, tally: RequestTally, retry_reason: str | None) -> None:
        """A submit round's requests and its retry (if any): one pipeline, one round trip."""
        if not tally.count and retry_reason is None:
            return
        pipe = self.client.pipeline(transaction=False)
        for bound, n in tally.buckets.items():
            pipe.hincrby(self.key, f"latency_le|{bound}", n)
        for outcome, n in tally.outcomes.items():
            pipe.hincrby(self.key, f"requests|{outcome}", n)
        if tally.count:
            pipe.hincrby(self.key, "latency_count", tally.count)
            pipe.hincrby(self.key, "latency_sum_us", tally.sum_us)
        if retry_reason is not None:
            pipe.hincrby(self.key, f"retries|{slug(retry_reason)}", 1)
        pipe.execute()

    def read(self) -> Counters:
        out = Counters()
        for name, raw in as_dict(self.client.hgetall(self.key)).items():
            _parse(out, name.split("|"), int(raw))
        return out

    def clear(self) -> None:
        self.client.delete(self.key)


def _parse(out: Counters, parts: Sequence[str], value: int) -> None:
    match parts:
        case ["claims", status, route]:
            out.claims[(status, route)] = value
        case ["rejects", code]:
            out.rejects[code] = value
        case ["latency_le", bound]:
            out.latency_buckets[bound] = value
        case ["latency_count"]:
            out.latency_count = value
        case ["latency_sum_us"]:
            out.latency_sum = value / 1_000_000
        case ["requests", outcome]:
            out.requests[outcome] = value
        case ["retries", reason]:
            out.retries[reason] = value
        case ["pauses"]:
            out.pauses = value
