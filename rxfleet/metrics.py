"""The fleet's metrics: one snapshot read from Redis at scrape time, shown two ways.

``rxfleet metrics --port P`` serves it to Prometheus (one exporter process for the
whole fleet, in the Procfile); ``rxfleet stats`` prints it on a terminal. The
counters live in Redis (``rxfleet.stores.metrics``: written per batch by the
record and submit links); the gauges (breakers, pause, token, claims in flight,
queue depths) are read live when scraped. See docs/operations.md, "Metrics".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import redis
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector, CollectorRegistry

from config import Settings
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.inflight import InflightLimit
from rxfleet.stores.metrics import Counters, MetricsStore
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore

BREAKER_STATES = ("closed", "half-open", "open")


@dataclass
class Sources:
    """Where a snapshot reads from (built by the caller: ``rxfleet.context``)."""

    metrics: MetricsStore
    runs: RunStore
    tokens: TokenStore
    pause: FleetPause
    breakers: list[Breaker]
    broker: redis.Redis | None  # None when the broker is not Redis: no queue depths
    queues: list[str]
    inflight: InflightLimit | None = None  # the fleet's adaptive in-flight limit
    rate: float | None = None  # RXFLEET_GATEWAY_RATE


@dataclass
class Snapshot:
    counters: Counters
    token_counters: dict[str, int]
    token_ttl: float | None
    breakers: dict[str, str]
    pause_seconds: float
    in_flight: int
    active_runs: int
    queue_depths: dict[str, int] = field(default_factory=dict)
    pace: dict[str, float | None] = field(default_factory=dict)  # in-flight limit, rate

    def as_dict(self) -> dict[str, Any]:
        c = self.counters
        return {
            "claims": [
                {"status": s, "route": r, "count": n} for (s, r), n in sorted(c.claims.items())
            ],
            "reject_codes": dict(sorted(c.rejects.items())),
            "gateway_requests": dict(sorted(c.requests.items())),
            "gateway_latency": {
                "count": c.latency_count,
                "sum_seconds": round(c.latency_sum, 6),
                "buckets": dict(c.cumulative_buckets()),
            },
            "submit_retries": dict(sorted(c.retries.items())),
            "fleet_pauses": c.pauses,
            "token": {"ttl_seconds": self.token_ttl, **self.token_counters},
            "breakers": self.breakers,
            "pause_seconds": round(self.pause_seconds, 1),
            "claims_in_flight": self.in_flight,
            "active_runs": self.active_runs,
            "queue_depths": self.queue_depths,
            "gateway_pace": self.pace,
        }


def snapshot(src: Sources) -> Snapshot:
    """Everything, read now: a handful of Redis commands whatever the fleet's size."""
    active = src.runs.active()
    current = src.tokens.current()
    return Snapshot(
        counters=src.metrics.read(),
        token_counters=src.tokens.stats(),
        token_ttl=round(current.ttl(), 1) if current is not None else None,
        breakers={b.name: b.state() for b in src.breakers},
        pause_seconds=src.pause.remaining(),
        in_flight=sum(src.runs.in_flight(run_id) for run_id in active),
        active_runs=len(active),
        queue_depths=(
            {q: int(src.broker.llen(q)) for q in src.queues} if src.broker is not None else {}
        ),
        pace=_pace(src),
    )


def _pace(src: Sources) -> dict[str, float | None]:
    """The fleet's in-flight limit (``inflight_limit``, its baseline latency and cuts)
    and ``RXFLEET_GATEWAY_RATE`` (``rate_limit``, None: unset)."""
    state = src.inflight.state() if src.inflight is not None else {}
    return {
        "inflight_limit": round(state["limit"], 1) if state else None,
        "inflight_base_ms": round(state["base_ms"], 1) if state else None,
        "inflight_cuts": state.get("cuts"),
        "rate_limit": src.rate,
    }


class FleetCollector(Collector):
    """A prometheus collector that reads a fresh snapshot at every scrape."""

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        yield from families(self.read())


def families(snap: Snapshot) -> Iterator[Metric]:
    yield from _claims(snap.counters)
    yield from _gateway(snap.counters)
    yield from _token(snap)
    yield from _gauges(snap)


def _claims(c: Counters) -> Iterator[Metric]:
    claims = CounterMetricFamily(
        "rxfleet_claims", "claims recorded, by status and route", labels=["status", "route"]
    )
    for (status, route), n in sorted(c.claims.items()):
        claims.add_metric([status, route], n)
    yield claims
    rejects = CounterMetricFamily(
        "rxfleet_reject_codes", "reject codes of recorded claims", labels=["code"]
    )
    for code, n in sorted(c.rejects.items()):
        rejects.add_metric([code], n)
    yield rejects


def _gateway(c: Counters) -> Iterator[Metric]:
    latency = HistogramMetricFamily(
        "rxfleet_gateway_request_seconds", "gateway claim requests of the submit link"
    )
    latency.add_metric([], [(b, float(n)) for b, n in c.cumulative_buckets()], c.latency_sum)
    yield latency
    requests = CounterMetricFamily(
        "rxfleet_gateway_requests",
        "gateway claim requests, by answer status (P, R, ...) or error class",
        labels=["outcome"],
    )
    for outcome, n in sorted(c.requests.items()):
        requests.add_metric([outcome], n)
    yield requests
    retries = CounterMetricFamily(
        "rxfleet_submit_retries", "submit rounds that came back later, by reason", labels=["reason"]
    )
    for reason, n in sorted(c.retries.items()):
        retries.add_metric([reason], n)
    yield retries
    yield CounterMetricFamily(
        "rxfleet_fleet_pauses", "fleet pauses set (429/503 with Retry-After)", value=c.pauses
    )


def _token(snap: Snapshot) -> Iterator[Metric]:
    counters = snap.token_counters
    yield CounterMetricFamily(
        "rxfleet_token_fetches",
        "portal tokens fetched (rotations)",
        value=counters.get("fetches", 0),
    )
    refused = CounterMetricFamily(
        "rxfleet_token_invalidations",
        "401s that invalidated the fleet's token (each led to one rotation)",
        labels=["reason"],
    )
    for name, n in sorted(counters.items()):
        if name.startswith("auth_"):
            refused.add_metric([name.removeprefix("auth_")], n)
    yield refused
    yield GaugeMetricFamily(
        "rxfleet_token_ttl_seconds",
        "seconds left of the portal token (-1: none)",
        value=snap.token_ttl if snap.token_ttl is not None else -1.0,
    )


def _gauges(snap: Snapshot) -> Iterator[Metric]:
    breakers = GaugeMetricFamily(
        "rxfleet_breaker_state", "circuit breaker state (1 for the current one)",
        labels=["breaker", "state"],
    )  # fmt: skip
    for name, state in sorted(snap.breakers.items()):
        for candidate in BREAKER_STATES:
            breakers.add_metric([name, candidate], 1.0 if state == candidate else 0.0)
    yield breakers
    yield GaugeMetricFamily(
        "rxfleet_fleet_pause_seconds", "seconds left of the fleet pause", value=snap.pause_seconds
    )
    yield GaugeMetricFamily(
        "rxfleet_claims_in_flight", "claims held in Redis now (all runs)", value=snap.in_flight
    )
    yield GaugeMetricFamily("rxfleet_active_runs", "runs not yet finished", value=snap.active_runs)
    yield from _pace_gauges(snap)
    depths = GaugeMetricFamily(
        "rxfleet_queue_depth", "messages waiting in each Celery queue", labels=["queue"]
    )
    for queue, n in sorted(snap.queue_depths.items()):
        depths.add_metric([queue], n)
    yield depths


def registry(read: Callable[[], Snapshot]) -> CollectorRegistry:
    """A registry with only the fleet's collector (no process metrics of the exporter)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(FleetCollector(read))
    return reg


def serve(read: Callable[[], Snapshot], host: str, port: int) -> None:  # pragma: no cover
    """Serve ``/metrics`` until interrupted."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(port, addr=host, registry=registry(read))
    try:
        while thread.is_alive():
            time.sleep(1.0)
    finally:
        server.shutdown()
        server.server_close()


def settings_queues(settings: Settings) -> list[str]:
    return [settings.queue_cpu, settings.queue_gateway]


def _pace_gauges(snap: Snapshot) -> Iterator[GaugeMetricFamily]:
    limit, rate = snap.pace.get("inflight_limit"), snap.pace.get("rate_limit")
    if limit is not None:
        yield GaugeMetricFamily(
            "rxfleet_gateway_inflight_limit",
            "the fleet's adaptive limit of gateway requests in flight",
            value=limit,
        )
    if rate is not None:
        yield GaugeMetricFamily(
            "rxfleet_gateway_rate_limit",
            "claims a second the fleet may send (RXFLEET_GATEWAY_RATE)",
            value=rate,
        )
