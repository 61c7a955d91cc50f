"""The crosswalk cache: the NDC-to-GPI file in Redis, once per content version.

A run pins the version it was produced with, so a crosswalk reloaded mid-run
does not change its answers. Keys: ``{p}:crosswalk:{version}`` (NDC-11 to the
entry as JSON) and ``{p}:crosswalk:{version}:ready`` (set once fully loaded).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import redis

from rxfleet.claims.crosswalk import CrosswalkEntry, file_digest, read_crosswalk
from rxfleet.stores.connection import fields

LOAD_CHUNK = 5000


@dataclass
class CrosswalkCache:
    client: redis.Redis
    prefix: str = "rx"

    def _table(self, version: str) -> str:
        return f"{self.prefix}:crosswalk:{version}"

    def _ready(self, version: str) -> str:
        return f"{self.prefix}:crosswalk:{version}:ready"

    def load(self, path: Path) -> str:
        """Load ``path`` once per content version; returns the version."""
        version = file_digest(path)
        if self.ready(version):
            return version
        for chunk in _chunks(read_crosswalk(path), LOAD_CHUNK):
            mapping = {entry.ndc11: json.dumps(entry.to_json()) for entry in chunk}
            self.client.hset(self._table(version), mapping=fields(mapping))
        self.client.set(self._ready(version), str(path.name))
        return version

    def ready(self, version: str) -> bool:
        return bool(self.client.exists(self._ready(version)))

    def lookup(self, version: str, ndcs: Sequence[str]) -> list[CrosswalkEntry | None]:
        """The entry of each NDC-11 (None where the crosswalk has none)."""
        if not ndcs:
            return []
        raw = self.client.hmget(self._table(version), list(ndcs))
        return [CrosswalkEntry.from_json(json.loads(doc)) if doc else None for doc in raw]


def _chunks(entries: Iterable[CrosswalkEntry], size: int) -> Iterator[list[CrosswalkEntry]]:
    iterator = iter(entries)
    while chunk := list(islice(iterator, size)):
        yield chunk
