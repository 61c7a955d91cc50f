"""Per-process objects the links need: the run store, the gateway client, keys."""

from __future__ import annotations

from config import get_settings
from rxfleet.keys import Keys
from rxfleet.redisconn import get_redis
from rxfleet.runs import RunStore, run_store
from rxfleet.tokens import TokenStore


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


def batch(first: int, count: int) -> range:
    return range(first, first + count)
