"""The per-process objects the links and commands need, built from the settings:
the Redis stores and the gateway client (one ``requests.Session`` per process).

Everything here is cheap to build (stores are thin) except the gateway client,
which is kept for the process; ``forget`` drops it after a fork.
"""

from __future__ import annotations

from config import get_settings
from rxfleet.gateway.client import GatewayClient
from rxfleet.links.submit import SubmitContext
from rxfleet.phikeys import token_sealer, vault
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.connection import get_redis
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.deadletters import DeadLetters
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.routes import RouteMemo
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenStore

_client: GatewayClient | None = None


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


def breaker() -> Breaker:
    settings = get_settings()
    return Breaker(
        get_redis(),
        settings.key_prefix,
        window=settings.breaker_window,
        threshold=settings.breaker_threshold,
        min_requests=settings.breaker_min_requests,
        cooldown=settings.breaker_cooldown,
        cooldown_max=settings.breaker_cooldown_max,
    )


def pause() -> FleetPause:
    return FleetPause(get_redis(), get_settings().key_prefix)


def routes() -> RouteMemo:
    settings = get_settings()
    return RouteMemo(get_redis(), settings.key_prefix, settings.route_miss_ttl)


def crosswalk() -> CrosswalkCache:
    return CrosswalkCache(get_redis(), get_settings().key_prefix)


def dead_letters() -> DeadLetters:
    return DeadLetters(get_redis(), get_settings().key_prefix)


def gateway_client() -> GatewayClient:
    """One gateway client (one requests.Session) per worker process."""
    global _client
    if _client is None:
        _client = GatewayClient(get_settings())
    return _client


def forget() -> None:
    """Drop the process's gateway client (after a fork: never share a socket)."""
    global _client
    _client = None


def submit_context() -> SubmitContext:
    settings = get_settings()
    return SubmitContext(
        runs=runs(),
        tokens=tokens(),
        pause=pause(),
        routes=routes(),
        gateway=gateway_client(),
        vault=vault(settings),
        settings=settings,
        breaker=breaker(),
    )


def batch(first: int, count: int) -> range:
    return range(first, first + count)
