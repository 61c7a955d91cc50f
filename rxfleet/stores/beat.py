"""The beat lease: one ``celery beat`` schedules for the whole fleet, whatever starts.

Key: ``{p}:beat:lease``, the name of the beat that holds it (host, pid and a
random tail), expiring ``ttl`` seconds after its last renewal. The holder renews
it every third of that; any other beat finds it held and waits as a standby,
trying again as often, and takes it over once the holder stops renewing (it
died, or lost Redis): within ``ttl`` plus a third of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis
from redis.commands.core import Script

from rxfleet.stores import lua
from rxfleet.stores.connection import as_text


@dataclass
class BeatLease:
    client: redis.Redis
    prefix: str
    owner: str  # this beat's name
    ttl: float = 15.0
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "beat", ("hold", "release"))

    @property
    def key(self) -> str:
        return f"{self.prefix}:beat:lease"

    @property
    def every(self) -> float:
        """How often the holder renews, and a standby asks."""
        return self.ttl / 3

    def hold(self) -> bool:
        """Take the lease if free, renew it if ours; whether this beat holds it now."""
        ms = max(1, int(self.ttl * 1000))
        return bool(self._scripts["hold"](keys=[self.key], args=[self.owner, ms]))

    def release(self) -> None:
        """Give it up (a clean stop), so a standby takes over at its next try."""
        self._scripts["release"](keys=[self.key], args=[self.owner])

    def holder(self) -> str | None:
        """Which beat holds the lease now, None when none."""
        return as_text(self.client.get(self.key))
