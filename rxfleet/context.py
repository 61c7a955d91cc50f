"""Per-process objects the links need: the run store, the gateway client, keys."""

from __future__ import annotations

from config import get_settings
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.connection import get_redis
from rxfleet.stores.keys import Keys
from rxfleet.stores.runs import RunStore, run_store
from rxfleet.stores.tokens import TokenStore


def runs() -> RunStore:
    settings = get_settings()
    return run_store(get_redis(), settings.key_prefix, settings.run_ttl_seconds)


def tokens() -> TokenStore:
    settings = get_settings()
    return TokenStore(
        client=get_redis(),
        keys=Keys(settings.key_prefix),
        lock_timeout=settings.token_lock_timeout,
        lock_wait=settings.token_lock_wait,
    )


def breaker() -> Breaker:
    settings = get_settings()
    return Breaker(
        client=get_redis(),
        keys=Keys(settings.key_prefix),
        window=settings.breaker_window,
        threshold=settings.breaker_threshold,
        min_requests=settings.breaker_min_requests,
        cooldown=settings.breaker_cooldown,
        cooldown_max=settings.breaker_cooldown_max,
    )


def batch(first: int, count: int) -> range:
    return range(first, first + count)
