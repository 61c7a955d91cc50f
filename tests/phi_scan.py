"""Dump everything a Redis server holds, to scan it for raw PHI; the X12 samples' CLM01."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import redis


def dump_values(client: redis.Redis) -> Iterator[str]:
    """Every key and every value of every type, as text (database 0; a decoding client)."""
    for key in client.scan_iter(count=1000):
        yield str(key)
        yield from _values(client, str(key))


def _values(client: redis.Redis, key: str) -> Iterable[str]:
    kind = str(client.type(key))
    if kind == "string":
        return [str(client.get(key))]
    if kind == "hash":
        return [f"{k!s}={v!s}" for k, v in client.hgetall(key).items()]
    if kind == "list":
        return [str(v) for v in client.lrange(key, 0, -1)]
    if kind == "set":
        return [str(v) for v in client.smembers(key)]
    if kind == "zset":
        return [str(v) for v in client.zrange(key, 0, -1)]
    if kind == "stream":
        return [str(fields) for _, fields in client.xrange(key) or []]
    return [f"<{kind}>"]


def leaks(haystack: Iterable[str], needles: set[str]) -> set[str]:
    """The needles found anywhere in the haystack."""
    text = "\n".join(haystack)
    return {needle for needle in needles if needle in text}


def x12_patient_account_numbers(paths: Iterable[Path]) -> set[str]:
    """CLM01 of every claim of the X12 files ``paths`` (patient account numbers: a
    HIPAA identifier the fleet keeps only as a keyed token). Read here with the
    delimiters of each ISA, not with the reader under test."""
    found: set[str] = set()
    for path in paths:
        text = path.read_text(encoding="utf-8").lstrip("\ufeff \r\n")
        element, terminator = text[3], text[105]
        for segment in text.split(terminator):
            fields = segment.strip("\r\n ").split(element)
            if fields[0] == "CLM" and len(fields) > 1 and fields[1]:
                found.add(fields[1])
    return found
