"""One Redis client per process and URL (redis-py clients are thread-safe)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias, TypeVar

import redis
from redis.client import Pipeline
from redis.typing import EncodableT

from config import get_settings
from rxfleet.errors import ConfigError
from rxfleet.stores.clock import CLOCK

_clients: dict[tuple[int, str], redis.Redis] = {}

T = TypeVar("T")

#: What a store's pipelined read hands back: give it the pipeline's whole reply
#: list and it reads its own replies (it knows where it queued them). Whoever
#: queues a command reads its reply; a caller never counts reply slots.
Decoder: TypeAlias = Callable[[Sequence[Any]], T]

__all__ = [
    "NO_EVICTION",
    "REDIS_OUTAGE",
    "Decoder",
    "Pipeline",
    "as_dict",
    "as_text",
    "check_clock",
    "check_eviction",
    "fields",
    "forget_clients",
    "get_redis",
]


#: Redis away (refused, reset, timed out) or full (``OOM command not allowed`` under
#: ``noeviction``): an outage the fleet rides through, never a claim's failure.
REDIS_OUTAGE: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.OutOfMemoryError,
)
#: The one ``maxmemory-policy`` under which Redis never drops a key to make room.
NO_EVICTION = "noeviction"


def check_eviction(client: redis.Redis) -> None:
    """Refuse, in one line, a Redis that would evict keys when full: a claim's record,
    a run's ledger or a queued batch would vanish without a word. An unreachable Redis
    or one that hides INFO is left to the outage handling (nothing to read)."""
    try:
        policy = client.info("memory").get("maxmemory_policy")
    except REDIS_OUTAGE:
        return
    except redis.ResponseError:  # INFO renamed or refused: nothing to read
        return
    if policy and policy != NO_EVICTION:
        raise ConfigError(
            f"Redis evicts keys when full (maxmemory-policy {policy}): in-flight claims "
            f"would be lost; set maxmemory-policy {NO_EVICTION} (docs/operations.md, Redis)"
        )


_UNREADABLE: tuple[type[Exception], ...] = (*REDIS_OUTAGE, redis.ResponseError)


def check_clock(client: redis.Redis, most: float) -> None:
    """Take the Redis server's clock for this process (``stores.clock``), and refuse, in
    one line, a host whose own clock is more than ``most`` seconds off it: whatever the
    fleet decides by time runs on Redis's clock, but the logs, the audit trail and the
    database's timestamps would be off, and a host that far off is broken. An
    unreachable Redis is left to the outage handling."""
    try:
        reading = CLOCK.follow(client, most)
    except _UNREADABLE:
        return
    if abs(reading.skew) > most + reading.doubt:
        way = "ahead of" if reading.skew > 0 else "behind"
        raise ConfigError(
            f"this host's clock is {abs(reading.skew):.1f} s {way} the Redis server's (at "
            f"most RXFLEET_CLOCK_SKEW_MAX={most:g} s): sync it (NTP, chrony) before starting"
        )


def get_redis(url: str | None = None) -> redis.Redis:
    """The process's client for ``url`` (default: the configured Redis)."""
    target = url or get_settings().redis_url_or_raise()
    key = (os.getpid(), target)
    client = _clients.get(key)
    if client is None:
        try:
            client = redis.Redis.from_url(target, decode_responses=True, health_check_interval=30)
        except ValueError:
            raise ConfigError(
                "RXFLEET_REDIS_URL is not a Redis URL (redis://, rediss:// or unix://)"
            ) from None
        _clients[key] = client
    return client


def forget_clients() -> None:
    """Drop cached clients (after a fork, or when the embedded server stops)."""
    for client in _clients.values():
        client.close()
    _clients.clear()


def as_text(value: object) -> str | None:
    """A reply as text (clients here decode responses; this tells mypy so)."""
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def as_dict(value: object) -> dict[str, str]:
    """A hash reply as a dict of text."""
    if not isinstance(value, dict):
        return {}
    return {str(as_text(k)): str(as_text(v)) for k, v in value.items()}


def fields(mapping: Mapping[str, object]) -> dict[EncodableT, EncodableT]:
    """A mapping for HSET, typed as redis-py wants it."""
    return {key: str(value) for key, value in mapping.items()}
