"""The dead-letter stream: claims that need a person or another try.

Key: ``{p}:dlq``, a stream of JSON entries (run, seq, claim id, where, route,
codes). Entries are appended by the run store's record script (with the
result, atomically); this module reads and removes them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import redis


@dataclass
class DeadLetters:
    client: redis.Redis
    prefix: str = "rx"

    @property
    def key(self) -> str:
        return f"{self.prefix}:dlq"

    def entries(self, run_id: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(stream id, entry), newest first, of one run or all."""
        reply: Any = self.client.xrevrange(self.key)
        for entry_id, data in reply or []:
            entry = json.loads(data["entry"])
            if run_id is None or entry["run_id"] == run_id:
                yield str(entry_id), entry

    def remove(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            self.client.xdel(self.key, *entry_ids)
