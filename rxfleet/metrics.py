"""The fleet's metrics: one snapshot read from Redis at scrape time, shown two ways.

``rxfleet metrics --port P`` serves it to Prometheus (one exporter process for the
whole fleet, in the Procfile); ``rxfleet stats`` prints it on a terminal. The
counters live in Redis (``rxfleet.stores.metrics``: written per batch by the
record and submit links); the gauges (breakers, pauses, token, claims in flight,
queue depths on Redis or RabbitMQ, workers heard from, the oldest batch's age,
dead letters waiting) are read live when scraped. See docs/operations.md, "Metrics".
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import redis
from prometheus_client import make_wsgi_app
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector, CollectorRegistry

from config import Settings
from rxfleet.errors import InfrastructureError
from rxfleet.stores import clock
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.broker import Depths, no_depths
from rxfleet.stores.formulary import FormularyCache
from rxfleet.stores.metrics import HISTOGRAMS, Counters, MetricsStore, cumulative
from rxfleet.stores.pause import FleetPause, Hold
from rxfleet.stores.portal import PortalStore, lag_seconds
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore
from rxfleet.stores.workers import WorkerRoll

BREAKER_STATES = ("closed", "half-open", "open")
WORKERS_WITHIN = 10.0  # a worker not heard from this long (5 heartbeats) is gone


@dataclass
class Sources:
    """Where a snapshot reads from (built by the caller: ``rxfleet.context``)."""

    metrics: MetricsStore
    runs: RunStore
    tokens: TokenStore
    pause: FleetPause
    breakers: list[Breaker]
    queues: list[str]
    portals: PortalStore | None = None  # the payer-portal syncs' counters
    formulary: FormularyCache | None = None
    depths: Depths = no_depths  # the broker's queue depths (Redis or RabbitMQ)
    roll: WorkerRoll | None = None  # None: no worker counts
    letters: Callable[[], dict[str, int]] | None = None  # dead letters waiting, by reason
    rate: Callable[[], float | None] | None = None  # the fleet's gateway rate in force
    inflight: Callable[[], int | None] | None = None  # the fleet's gateway in-flight limit


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
    #: Each payer portal a sync pulls (by label): its counters and ``lag_seconds``.
    portals: dict[str, dict[str, float]] = field(default_factory=dict)
    formulary_version: int = 0
    formulary_waiting: float = 0.0  # seconds an event has waited behind a gap (0: none)
    hold: Hold | None = None  # an operator's pause
    workers: dict[str, int] = field(default_factory=dict)  # queue → workers heard lately
    oldest_batch_age: float = 0.0  # seconds since the least recent progress of an open batch
    dead_letters: dict[str, int] = field(default_factory=dict)  # reason → waiting
    gateway_rate: float | None = None  # claims a second the fleet sends at most (None: no limit)
    gateway_inflight: int | None = None  # requests the fleet keeps in flight at most, found

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
            "portals": self.portals,
            "formulary": {
                "version": self.formulary_version,
                "waiting_seconds": round(self.formulary_waiting, 1),
                "webhook_requests": dict(sorted(c.webhook.items())),
                "claim_waits": dict(sorted(c.formulary_waits.items())),
            },
            "validation_seconds": _histogram_dict(c, "validation"),
            "webhook_lag_seconds": _histogram_dict(c, "webhook_lag"),
            "operator_pause": self.hold.as_dict() if self.hold is not None else None,
            "workers": self.workers,
            "oldest_batch_age_seconds": round(self.oldest_batch_age, 1),
            "dead_letters_waiting": self.dead_letters,
            "gateway_rate_per_second": self.gateway_rate,
            "gateway_inflight_limit": self.gateway_inflight,
        }


def _histogram_dict(c: Counters, name: str) -> dict[str, Any]:
    h = c.histogram(name)
    return {"count": h.count, "sum_seconds": round(h.total, 6),
            "buckets": dict(cumulative(HISTOGRAMS[name], h.buckets))}  # fmt: skip


def snapshot(src: Sources) -> Snapshot:
    """Everything, read now: a handful of Redis commands whatever the fleet's size."""
    active = src.runs.active()
    current = src.tokens.info()
    view = src.formulary.lookup([]) if src.formulary is not None else None
    queues = src.queues
    return Snapshot(
        counters=src.metrics.read(),
        token_counters=src.tokens.stats(),
        token_ttl=round(current.ttl(), 1) if current is not None else None,
        breakers={b.name: b.state() for b in src.breakers},
        pause_seconds=src.pause.remaining(),
        in_flight=sum(src.runs.in_flight(run_id) for run_id in active),
        active_runs=len(active),
        queue_depths=src.depths(),
        hold=src.pause.held(),
        workers=src.roll.count(queues, WORKERS_WITHIN) if src.roll is not None else {},
        oldest_batch_age=oldest_batch_age(src.runs, active),
        dead_letters=src.letters() if src.letters is not None else {},
        gateway_rate=src.rate() if src.rate is not None else None,
        gateway_inflight=src.inflight() if src.inflight is not None else None,
        portals=portal_stats(src.portals) if src.portals is not None else {},
        formulary_version=view.version if view else 0,
        formulary_waiting=time.time() - view.waiting_since if view and view.waiting_since else 0.0,
    )


def portal_stats(store: PortalStore) -> dict[str, dict[str, float]]:
    """Each portal's sync counters, and its lag now (-1 before its first pull)."""
    out = {}
    for portal, label in sorted(store.portals().items()):
        stats = store.stats(portal)
        lag = lag_seconds(stats)
        out[label] = {**stats, "lag_seconds": round(lag, 3) if lag is not None else -1.0}
    return out


def oldest_batch_age(runs: RunStore, active: list[str]) -> float:
    """Seconds since the least recent progress of any open batch of the active runs."""
    lasts = [last for run_id in active for _, last in runs.batches(run_id).values()]
    return max(0.0, clock.now() - min(lasts)) if lasts else 0.0


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
    yield from _portals(snap.portals)
    yield from _formulary(snap)
    yield from _fleet(snap)


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
        "401s refusing the fleet's token, by reason; each asks to drop the token it was "
        "sent with, and all the 401s of one token lead to one rotation "
        "(compare rxfleet_token_fetches)",
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
    yield GaugeMetricFamily(
        "rxfleet_gateway_rate",
        "claims a second the fleet sends the gateway at most (RXFLEET_GATEWAY_RATE; 0: none)",
        value=snap.gateway_rate or 0.0,
    )
    yield GaugeMetricFamily(
        "rxfleet_gateway_inflight_limit",
        "gateway requests the fleet keeps in flight at most, as found from the gateway's "
        "answers (0: no submit worker sent lately)",
        value=snap.gateway_inflight or 0,
    )
    depths = GaugeMetricFamily(
        "rxfleet_queue_depth", "messages waiting in each Celery queue", labels=["queue"]
    )
    for queue, n in sorted(snap.queue_depths.items()):
        depths.add_metric([queue], n)
    yield depths


#: The portal sync's counters: (metric, its stats field, help).
PORTAL_COUNTERS = (
    ("rxfleet_portal_claims_pulled", "pulled", "claims pulled from the payer portal"),
    ("rxfleet_portal_claims_acked", "acked", "claims acknowledged to the payer portal"),
    ("rxfleet_portal_throttled", "throttled", "portal answers 429 (rate limited)"),
    ("rxfleet_portal_paced_seconds", "paced_seconds",
     "seconds the sync held back on X-RateLimit-Remaining/-Reset before a 429"),
    ("rxfleet_portal_recovered", "recovered",
     "claims pulled again after Redis lost them (same run and seq)"),
)  # fmt: skip


def _portals(portals: dict[str, dict[str, float]]) -> Iterator[Metric]:
    lag = GaugeMetricFamily(
        "rxfleet_portal_lag_seconds",
        "upper bound of the wait of the oldest pending portal claim not yet pulled "
        "(seconds since the sync last found nothing more pending; -1 before any pull)",
        labels=["portal"],
    )
    for portal, stats in portals.items():
        lag.add_metric([portal], stats["lag_seconds"])
    yield lag
    for name, key, text in PORTAL_COUNTERS:
        family = CounterMetricFamily(name, text, labels=["portal"])
        for portal, stats in portals.items():
            family.add_metric([portal], stats.get(key, 0.0))
        yield family
    requests = CounterMetricFamily(
        "rxfleet_portal_requests", "portal requests, by answer status", labels=["portal", "status"]
    )
    for portal, stats in portals.items():
        for field_name, n in sorted(stats.items()):
            if field_name.startswith("requests|"):
                requests.add_metric([portal, field_name.removeprefix("requests|")], n)
    yield requests


def _histogram(name: str, help_text: str, c: Counters, key: str) -> HistogramMetricFamily:
    h = c.histogram(key)
    family = HistogramMetricFamily(name, help_text)
    buckets = [(b, float(n)) for b, n in cumulative(HISTOGRAMS[key], h.buckets)]
    family.add_metric([], buckets, h.total)
    return family


def _formulary(snap: Snapshot) -> Iterator[Metric]:
    c = snap.counters
    yield _histogram("rxfleet_validation_seconds", "validation time per claim (intake link)",
                     c, "validation")  # fmt: skip
    yield _histogram("rxfleet_webhook_lag_seconds", "formulary events: published to applied",
                     c, "webhook_lag")  # fmt: skip
    hooks = CounterMetricFamily(
        "rxfleet_webhook_requests", "formulary webhook requests, by answer", labels=["outcome"]
    )
    for outcome, n in sorted(c.webhook.items()):
        hooks.add_metric([outcome], n)
    yield hooks
    waits = CounterMetricFamily(
        "rxfleet_formulary_waits",
        "claims held for a pending formulary update, and how each wait ended",
        labels=["outcome"],
    )
    for outcome, n in sorted(c.formulary_waits.items()):
        waits.add_metric([outcome], n)
    yield waits
    yield GaugeMetricFamily(
        "rxfleet_formulary_version", "formulary version published (last event applied)",
        value=snap.formulary_version,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "rxfleet_formulary_waiting_seconds",
        "seconds a formulary event has waited behind a gap in the sequence (0: none)",
        value=snap.formulary_waiting,
    )


def _fleet(snap: Snapshot) -> Iterator[Metric]:
    """The operator's pause, workers heard from, stalled batches, dead letters waiting."""
    left = snap.hold.remaining() if snap.hold is not None else 0.0
    yield GaugeMetricFamily(
        "rxfleet_operator_pause", "1 while an operator's pause holds the fleet (rxfleet pause)",
        value=1.0 if snap.hold is not None else 0.0,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "rxfleet_operator_pause_seconds",
        "seconds left of the operator's pause (-1: until rxfleet unpause; 0: none)",
        value=-1.0 if math.isinf(left) else left,
    )
    workers = GaugeMetricFamily(
        "rxfleet_workers", "workers heard from in the last 10 s, by queue", labels=["queue"]
    )
    for queue, n in sorted(snap.workers.items()):
        workers.add_metric([queue], n)
    yield workers
    yield GaugeMetricFamily(
        "rxfleet_oldest_batch_age_seconds",
        "seconds since the least recent progress of an open batch (0: none open)",
        value=snap.oldest_batch_age,
    )
    letters = GaugeMetricFamily(
        "rxfleet_dead_letters", "dead letters not yet replayed, by reason", labels=["reason"]
    )
    for reason, n in sorted(snap.dead_letters.items()):
        letters.add_metric([reason], n)
    yield letters


def registry(read: Callable[[], Snapshot]) -> CollectorRegistry:
    """A registry with only the fleet's collector (no process metrics of the exporter)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(FleetCollector(read))
    return reg


#: What a scrape answers when Redis (the counters' home) cannot be read.
UNAVAILABLE = "503 Service Unavailable"


def wsgi_app(reg: CollectorRegistry) -> Callable[..., list[bytes]]:
    """Prometheus's WSGI app, but Redis away is one line and 503, never a traceback."""
    inner = make_wsgi_app(reg)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        try:
            return list(inner(environ, start_response))
        except (redis.RedisError, InfrastructureError) as exc:
            line = f"rxfleet metrics: Redis unavailable ({type(exc).__name__})\n"
            start_response(UNAVAILABLE, [("Content-Type", "text/plain; charset=utf-8")])
            return [line.encode()]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log (a scrape every few seconds)."""


def serve(read: Callable[[], Snapshot], host: str, port: int) -> None:  # pragma: no cover
    """Serve ``/metrics`` until interrupted."""
    server = make_server(host, port, wsgi_app(registry(read)), ThreadingWSGIServer,
                         handler_class=_QuietHandler)  # fmt: skip
    try:
        server.serve_forever()
    finally:
        server.server_close()


def settings_queues(settings: Settings) -> list[str]:
    return [settings.queue_cpu, settings.queue_gateway]
