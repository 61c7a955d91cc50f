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
* ``pauses``: fleet pauses set (429/503 with Retry-After);
* ``hist|NAME|BOUND``, ``hist_count|NAME``, ``hist_sum_us|NAME``: the histograms of
  ``HISTOGRAMS`` (validation latency per claim, written per batch by the intake
  link; webhook lag, published to applied, written by ``rxfleet webhooks``);
* ``webhook|OUTCOME``: formulary webhook requests by answer (stored, duplicate,
  stale, mismatch, missing, malformed, not_event, oversize, clash, unavailable);
* ``formulary_waits|OUTCOME``: claims the crosswalk link held for a pending
  formulary update (``waiting``), and how each wait ended (``mapped``, ``expired``).
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import redis

from rxfleet.stores.connection import as_dict

#: Upper bounds (seconds) of the gateway latency buckets.
LATENCY_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


#: Upper bounds (seconds) of the other histograms, by name.
HISTOGRAMS: dict[str, tuple[float, ...]] = {
    "validation": (
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    ),
    "webhook_lag": (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
}  # fmt: skip


def bound_of(buckets: Sequence[float], seconds: float) -> str:
    """The label of the bucket ``seconds`` falls in (``+Inf`` past the last)."""
    index = bisect.bisect_left(buckets, seconds)
    return "+Inf" if index == len(buckets) else repr(buckets[index])


def cumulative(buckets: Sequence[float], counts: dict[str, int]) -> list[tuple[str, int]]:
    """Prometheus' buckets from per-bucket counts: cumulative, ``+Inf`` last."""
    out, running = [], 0
    for bound in [*(repr(b) for b in buckets), "+Inf"]:
        running += counts.get(bound, 0)
        out.append((bound, running))
    return out


@dataclass
class Histogram:
    """One histogram's counts, parsed (buckets not cumulative)."""

    buckets: dict[str, int] = field(default_factory=dict)
    count: int = 0
    total: float = 0.0


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
        self.buckets[bound_of(LATENCY_BUCKETS, seconds)] += 1
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
    histograms: dict[str, Histogram] = field(default_factory=dict)
    webhook: dict[str, int] = field(default_factory=dict)
    formulary_waits: dict[str, int] = field(default_factory=dict)

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """Prometheus' buckets: cumulative, ``+Inf`` last."""
        return cumulative(LATENCY_BUCKETS, self.latency_buckets)

    def histogram(self, name: str) -> Histogram:
        return self.histograms.get(name) or Histogram()


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

    def observe(
        self, name: str, seconds: Sequence[float], counts: Mapping[str, int] | None = None
    ) -> None:
        """Add ``seconds`` to histogram ``name`` and ``counts`` (``field|label``: n) to their
        counters: one pipeline, one round trip."""
        pipe = self.client.pipeline(transaction=False)
        buckets = Counter(bound_of(HISTOGRAMS[name], s) for s in seconds)
        for bound, n in buckets.items():
            pipe.hincrby(self.key, f"hist|{name}|{bound}", n)
        if seconds:
            pipe.hincrby(self.key, f"hist_count|{name}", len(seconds))
            pipe.hincrby(self.key, f"hist_sum_us|{name}", int(sum(seconds) * 1_000_000))
        for counter, n in (counts or {}).items():
            if n:
                pipe.hincrby(self.key, counter, n)
        if len(pipe):
            pipe.execute()

    def add(self, counts: Mapping[str, int]) -> None:
        """Add ``counts`` (``field|label``: n) to their counters in one round trip."""
        self.observe("validation", [], counts)

    def read(self) -> Counters:
        out = Counters()
        for name, raw in as_dict(self.client.hgetall(self.key)).items():
            _parse(out, name.split("|"), int(raw))
        return out

    def clear(self) -> None:
        self.client.delete(self.key)


def _parse(out: Counters, parts: Sequence[str], value: int) -> None:
    if parts[0] in ("hist", "hist_count", "hist_sum_us", "webhook", "formulary_waits"):
        _parse_more(out, parts, value)
        return
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


def _parse_more(out: Counters, parts: Sequence[str], value: int) -> None:
    match parts:
        case ["hist", name, bound]:
            out.histograms.setdefault(name, Histogram()).buckets[bound] = value
        case ["hist_count", name]:
            out.histograms.setdefault(name, Histogram()).count = value
        case ["hist_sum_us", name]:
            out.histograms.setdefault(name, Histogram()).total = value / 1_000_000
        case ["webhook", outcome]:
            out.webhook[outcome] = value
        case ["formulary_waits", outcome]:
            out.formulary_waits[outcome] = value
