"""The fleet-wide pause: when the gateway says 429/503 with Retry-After, every
worker holds back until then, not just the one that was told.

Keys: ``{p}:gateway:pause`` (epoch milliseconds until which nobody sends; it
expires then) and ``{p}:gateway:pauses`` (a capped log of what the fleet was
told: when each pause was set and until when).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import redis
from redis.commands.core import Script

from rxfleet.stores import lua
from rxfleet.stores.connection import Decoder, Pipeline, as_text
from rxfleet.stores.metrics import metrics_key

LOG_LENGTH = 10_000


@dataclass
class FleetPause:
    client: redis.Redis
    prefix: str = "rx"
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "pause", ("lengthen",))  # never shortens

    @property
    def key(self) -> str:
        return f"{self.prefix}:gateway:pause"

    @property
    def log_key(self) -> str:
        return f"{self.prefix}:gateway:pauses"

    def read(self, pipe: Pipeline) -> Decoder[float]:
        """Queue the pause's read on ``pipe``; the decoder says the seconds left of it."""
        at = len(pipe)
        pipe.get(self.key)
        return lambda replies: _remaining(replies[at])

    def remaining(self) -> float:
        """Seconds left of the pause, 0 when none."""
        return _remaining(self.client.get(self.key))

    def lengthen(self, seconds: float) -> None:
        """Hold every worker back until ``seconds`` from now (only ever lengthened)."""
        until_ms = int((time.time() + seconds) * 1000)
        self._scripts["lengthen"](keys=[self.key], args=[until_ms])
        set_at = time.time()  # after the SET: every gate check from now on sees the pause
        pipe = self.client.pipeline()
        pipe.lpush(self.log_key, json.dumps({"set_at": set_at, "until": until_ms / 1000}))
        pipe.ltrim(self.log_key, 0, LOG_LENGTH - 1)
        pipe.hincrby(metrics_key(self.prefix), "pauses", 1)
        pipe.execute()

    def history(self) -> list[dict[str, float]]:
        """What the fleet was told, newest first: ``set_at`` and ``until`` (epoch seconds)."""
        return [json.loads(str(entry)) for entry in self.client.lrange(self.log_key, 0, -1)]

    def clear(self) -> None:
        self.client.delete(self.key, self.log_key)


def _remaining(reply: object) -> float:
    until = as_text(reply)
    return 0.0 if until is None else max(0.0, int(until) / 1000 - time.time())
