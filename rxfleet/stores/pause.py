"""The fleet-wide pauses: every submit worker holds back, not just the one that was told.

Two pauses, kept apart so neither ends the other early:

* the **gateway's** pause: a 429/503 with Retry-After holds the fleet until then.
  It is only ever lengthened. Keys: ``{p}:gateway:pause`` (epoch milliseconds
  until which nobody sends; it expires a second later) and ``{p}:gateway:pauses`` (a
  capped log of what the fleet was told: when each pause was set and until when).
* the **operator's** hold (``rxfleet pause [--for D]`` / ``rxfleet unpause``):
  ``{p}:fleet:hold``, a JSON ``{"set_at", "until"}`` (``until`` null: until
  unpaused), expiring with its ``--for``. A later ``pause`` replaces it;
  ``unpause`` deletes it and leaves the gateway's pause alone. Workers send
  while neither holds them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import redis
from redis.commands.core import Script

from rxfleet.stores import clock, lua
from rxfleet.stores.connection import Decoder, Pipeline, as_text
from rxfleet.stores.metrics import metrics_key

LOG_LENGTH = 10_000
#: How long the pause key outlives the pause, so that a read begun before its end and
#: answered after it still finds it (``read(since=...)``).
GRACE_MS = 1_000


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

    def read(self, pipe: Pipeline, since: float | None = None) -> Decoder[float]:
        """Queue the pause's read on ``pipe``; the decoder says the seconds left of it,
        counted from ``since`` (epoch s, taken before the read) when given: a read begun
        before the pause's end is held by it, however long the read took (the key
        outlives its end by ``GRACE_MS`` for this)."""
        at = len(pipe)
        pipe.get(self.key)
        return lambda replies: _remaining(replies[at], since)

    def remaining(self) -> float:
        """Seconds left of the pause, 0 when none."""
        return _remaining(self.client.get(self.key))

    def lengthen(self, seconds: float) -> None:
        """Hold every worker back until ``seconds`` from now (only ever lengthened)."""
        until_ms = int((clock.now() + seconds) * 1000)
        self._scripts["lengthen"](keys=[self.key], args=[until_ms, GRACE_MS])
        set_at = clock.now()  # after the SET: every gate check from now on sees the pause
        pipe = self.client.pipeline()
        pipe.lpush(self.log_key, json.dumps({"set_at": set_at, "until": until_ms / 1000}))
        pipe.ltrim(self.log_key, 0, LOG_LENGTH - 1)
        pipe.hincrby(metrics_key(self.prefix), "pauses", 1)
        pipe.execute()

    def history(self) -> list[dict[str, float]]:
        """What the fleet was told, newest first: ``set_at`` and ``until`` (epoch seconds)."""
        return [json.loads(str(entry)) for entry in self.client.lrange(self.log_key, 0, -1)]

    def clear(self) -> None:
        self.client.delete(self.key, self.log_key, self.hold_key)

    @property
    def hold_key(self) -> str:
        return f"{self.prefix}:fleet:hold"

    def hold(self, seconds: float | None) -> Hold:
        """The operator's pause: every submit worker holds back for ``seconds`` (None:
        until ``release``). Replaces an earlier hold; leaves the gateway's pause alone."""
        now = clock.now()
        held = Hold(set_at=now, until=None if seconds is None else now + seconds)
        text = json.dumps({"set_at": held.set_at, "until": held.until})
        if seconds is None:
            self.client.set(self.hold_key, text)
        else:
            self.client.set(self.hold_key, text, px=max(1, int(seconds * 1000)))
        return held

    def release(self) -> Hold | None:
        """End the operator's pause (the gateway's, if any, runs its course); what it was."""
        pipe = self.client.pipeline()
        pipe.get(self.hold_key)
        pipe.delete(self.hold_key)
        was, _ = pipe.execute()
        return _hold(was)

    def read_hold(self, pipe: Pipeline) -> Decoder[Hold | None]:
        """Queue the hold's read on ``pipe``; the decoder says the hold, None when none."""
        at = len(pipe)
        pipe.get(self.hold_key)
        return lambda replies: _hold(replies[at])

    def held(self) -> Hold | None:
        """The operator's pause now, None when none."""
        return _hold(self.client.get(self.hold_key))


@dataclass(frozen=True)
class Hold:
    """An operator's pause: set at ``set_at``, until ``until`` (epoch s; None: unpaused)."""

    set_at: float
    until: float | None

    def remaining(self) -> float:
        """Seconds left (``math.inf`` until unpaused)."""
        return math.inf if self.until is None else max(0.0, self.until - clock.now())

    def as_dict(self) -> dict[str, float | None]:
        left = self.remaining()
        return {"set_at": self.set_at, "until": self.until,
                "seconds_left": None if math.isinf(left) else round(left, 1)}  # fmt: skip


def _hold(reply: object) -> Hold | None:
    text = as_text(reply)
    if text is None:
        return None
    data = json.loads(text)
    return Hold(set_at=float(data["set_at"]), until=data["until"])


def _remaining(reply: object, since: float | None = None) -> float:
    until = as_text(reply)
    now = clock.now() if since is None else since
    return 0.0 if until is None else max(0.0, int(until) / 1000 - now)
