"""The per-process objects the links and commands need, built from the settings:
the Redis stores, the database, the gateway client (the token endpoint, one
pooled ``requests.Session`` per process), the claim sender (one aiohttp event
loop and session per process) and the breakers (whose buffered counts are per
process).

Stores are thin and built on demand; the rest is kept for the process and
``forget`` drops it after a fork (a socket or a thread never crosses a fork).
"""

from __future__ import annotations

import os
import socket
import threading
import urllib.parse
from collections.abc import Callable
from typing import TypeVar

from config import get_settings
from rxfleet.claims.rejects import matrix
from rxfleet.gateway.aio import AioSender
from rxfleet.gateway.client import GatewayClient
from rxfleet.links.submit import LocalPause, SubmitContext
from rxfleet.links.submit.pace import Pacer
from rxfleet.phikeys import token_sealer, vault
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.connection import get_redis
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.database import Database
from rxfleet.stores.inflight import InflightLimit
from rxfleet.stores.metrics import MetricsStore
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.rate import GatewayRate
from rxfleet.stores.routes import RouteMemo
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore

_client: GatewayClient | None = None
_kept: dict[tuple[object, ...], object] = {}
_lock = threading.Lock()
T = TypeVar("T")


def _keep(key: tuple[object, ...], kind: type[T], make: Callable[[], T]) -> T:
    """One object per process for ``key`` (the settings that shape it are part of the key)."""
    with _lock:
        found = _kept.get(key)
        if not isinstance(found, kind):
            found = _kept[key] = make()
        return found


def runs() -> RunStore:
    settings = get_settings()
    return RunStore(get_redis(), settings.key_prefix, settings.run_ttl_seconds)


def tokens() -> TokenStore:
    settings = get_settings()
    return TokenStore(
        get_redis(),
        settings.key_prefix,
        lock_timeout=settings.token_lock_timeout,
        lock_wait=settings.token_lock_wait,
        sealer=token_sealer(settings),
    )


def health_breaker() -> Breaker:
    """The gateway-health breaker: transport failures and 5xx without Retry-After."""
    s = get_settings()
    return _breaker("health", s.health_breaker_threshold, s.health_breaker_min_requests)


def auth_breaker() -> Breaker:
    """The authentication breaker: 401s a freshly rotated token did not cure."""
    s = get_settings()
    return _breaker("auth", s.auth_breaker_threshold, s.auth_breaker_min_requests)


def _breaker(name: str, threshold: float, least: int) -> Breaker:
    s = get_settings()
    shape = (s.key_prefix, s.breaker_window, threshold, least, s.breaker_cooldown,
             s.breaker_cooldown_max)  # fmt: skip
    return _keep(
        (name, *shape), Breaker, lambda: Breaker(get_redis(), s.key_prefix, name, *shape[1:])
    )


def database() -> Database:
    """The process's handle on the system of record (migrated on first use)."""
    url = get_settings().database_url_or_raise()

    def make() -> Database:
        db = Database(url)
        db.upgrade()
        return db

    return _keep(("db", url), Database, make)


def sender() -> AioSender:
    """The submit link's requests in flight: one event loop and session per process."""
    size = get_settings().submit_inflight
    return _keep(("sender", size), AioSender, lambda: AioSender(gateway_client()))


def gateway_id() -> str:
    """The gateway's name in the keys of its limits: the host and port of its URL."""
    url = get_settings().gateway_url or "sandbox"
    return urllib.parse.urlsplit(url).netloc or url


def inflight() -> InflightLimit:
    """The fleet's adaptive in-flight limit for this gateway."""
    s = get_settings()
    return InflightLimit(get_redis(), s.key_prefix, gateway_id(), s.inflight_floor,
                         max(s.inflight_floor, s.inflight_ceiling), s.gateway_rate)  # fmt: skip


def gateway_rate() -> GatewayRate | None:
    """The fleet's rate for this gateway (None: RXFLEET_GATEWAY_RATE unset)."""
    s = get_settings()
    if s.gateway_rate is None:
        return None
    return GatewayRate(get_redis(), s.gateway_rate, s.key_prefix, gateway_id())


def pacer() -> Pacer:
    """This process's share of the fleet's in-flight limit and its send slots."""
    s = get_settings()
    process = f"{socket.gethostname()}:{os.getpid()}"
    shape = ("pacer", gateway_id(), s.gateway_rate, s.inflight_floor, s.inflight_ceiling,
             s.submit_inflight, s.key_prefix)  # fmt: skip
    limit, rate, gate = inflight(), gateway_rate(), sender()  # not under _keep's lock
    return _keep(shape, Pacer, lambda: Pacer(limit, rate, gate, process))


def pause() -> FleetPause:
    return FleetPause(get_redis(), get_settings().key_prefix)


def routes() -> RouteMemo:
    settings = get_settings()
    return RouteMemo(get_redis(), settings.key_prefix, settings.route_miss_ttl)


def crosswalk() -> CrosswalkCache:
    return CrosswalkCache(get_redis(), get_settings().key_prefix)


def metrics() -> MetricsStore:
    """The fleet's counters in Redis (one hash; ``rxfleet metrics`` exports them)."""
    return MetricsStore(get_redis(), get_settings().key_prefix)


def gateway_client() -> GatewayClient:
    """One gateway client (one requests.Session) per worker process."""
    global _client
    if _client is None:
        _client = GatewayClient(get_settings())
    return _client


def forget() -> None:
    """Drop the process's kept objects (after a fork: never share a socket or a thread).

    What this process opened is closed; what a parent opened is left to the parent.
    """
    global _client
    _client = None
    with _lock:
        kept = list(_kept.values())
        _kept.clear()
    for thing in kept:
        if isinstance(thing, Database) or (
            isinstance(thing, AioSender) and thing.pid == os.getpid()
        ):
            thing.close()


def submit_context(owner: str) -> SubmitContext:
    settings = get_settings()
    return SubmitContext(
        runs=runs(),
        tokens=tokens(),
        pause=pause(),
        routes=routes(),
        gateway=gateway_client(),
        vault=vault(settings),
        settings=settings,
        health=health_breaker(),
        auth=auth_breaker(),
        sender=sender(),
        local_pause=_keep(("local-pause",), LocalPause, LocalPause),
        rejects=matrix(settings.reject_matrix),
        metrics=metrics(),
        owner=owner,
        pacer=pacer(),
    )


def batch(first: int, count: int) -> range:
    return range(first, first + count)
