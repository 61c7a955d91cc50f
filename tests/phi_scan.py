"""Dump everything a Redis server holds, to scan it for raw PHI."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import redis


def dump_values(client: redis.Redis) -> Iterator[str]:
    """Every key and every value of every type, as text (database 0)."""
    for key in client.scan_iter(count=1000):
        yield str(key)
        yield from _values(client, key)


def _values(client: redis.Redis, key: object) -> Iterable[str]:
    kind = client.type(key)  # type: ignore[arg-type]
    kind = kind.decode() if isinstance(kind, bytes) else kind
    if kind == "string":
        return [str(client.get(key))]  # type: ignore[arg-type]
    if kind == "hash":
        return [f"{k}={v}" for k, v in client.hgetall(key).items()]  # type: ignore[arg-type,union-attr]
    if kind == "list":
        return [str(v) for v in client.lrange(key, 0, -1)]  # type: ignore[arg-type,union-attr]
    if kind == "set":
        return [str(v) for v in client.smembers(key)]  # type: ignore[arg-type,union-attr]
    if kind == "zset":
        return [str(v) for v in client.zrange(key, 0, -1)]  # type: ignore[arg-type,union-attr]
    if kind == "stream":
        return [str(fields) for _, fields in client.xrange(key)]  # type: ignore[arg-type,union-attr]
    return [f"<{kind}>"]


def leaks(haystack: Iterable[str], needles: set[str]) -> set[str]:
    """The needles found anywhere in the haystack."""
    text = "\n".join(haystack)
    return {needle for needle in needles if needle in text}
