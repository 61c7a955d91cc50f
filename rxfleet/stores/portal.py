"""The payer-portal sync in Redis: who pulls a portal (a lease) and what it counted.

Keys (``{id}``: ``portal_id(url)``, a digest of the portal's URL):

* ``{p}:portal:{id}:lease``: the sync process that pulls this portal, until its
  lease runs out (renewed every step; a second ``rxfleet sync`` waits, then takes over);
* ``{p}:portal:{id}:stats``: counters (``pulled``, ``acked``, ``pages``, ``acks``,
  ``throttled`` 429s, ``unavailable`` 503s, ``paced_seconds``, ``recovered``,
  ``requests|STATUS``) and times (``caught_up_at``: the last pull that left nothing
  pending; ``first_pull_at``; ``last_pull_at``);
* fleet-wide ``{p}:portals``: each portal's id → its label (host and port, for metrics).

What must last (which claim went to which run, what was acknowledged) is in the
database (``rxfleet.stores.portal_record``); this is working memory.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis
from redis.commands.core import Script

from rxfleet.stores import lua
from rxfleet.stores.connection import as_dict


def portal_id(url: str) -> str:
    """A portal's id: 16 hex of the SHA-256 of its URL (no slash at its end)."""
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


def portal_label(url: str) -> str:
    """What metrics call a portal: its host and port (never a user or password)."""
    parts = urlsplit(url)
    host = parts.hostname or "portal"
    return f"{host}:{parts.port}" if parts.port else host


@dataclass
class PortalStore:
    client: redis.Redis
    prefix: str = "rx"
    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "portal", ("hold", "release"))

    def _key(self, portal: str, part: str) -> str:
        return f"{self.prefix}:portal:{portal}:{part}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:portals"

    def register(self, portal: str, label: str) -> None:
        """Make the portal known to the exporter."""
        self.client.hset(self._index, portal, label)

    def hold(self, portal: str, holder: str, seconds: float) -> bool:
        """Take or renew the portal's lease for ``holder``; False when another holds it."""
        key = self._key(portal, "lease")
        return bool(int(self._scripts["hold"](keys=[key], args=[holder, int(seconds * 1000)])))

    def release(self, portal: str, holder: str) -> None:
        self._scripts["release"](keys=[self._key(portal, "lease")], args=[holder])

    def count(self, portal: str, **amounts: float) -> None:
        """Add to counters (``requests|429`` style names are given as a dict: ``counts``)."""
        self.counts(portal, amounts)

    def counts(self, portal: str, amounts: dict[str, float]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for name, amount in amounts.items():
            if isinstance(amount, int):
                pipe.hincrby(self._key(portal, "stats"), name, amount)
            else:
                pipe.hincrbyfloat(self._key(portal, "stats"), name, amount)
        pipe.execute()

    def mark(self, portal: str, **times: float) -> None:
        """Set times (epoch seconds): ``caught_up_at``, ``last_pull_at``."""
        self.client.hset(self._key(portal, "stats"), mapping={k: repr(v) for k, v in times.items()})

    def mark_once(self, portal: str, name: str, at: float) -> None:
        """Set a time unless it is set (``first_pull_at``)."""
        self.client.hsetnx(self._key(portal, "stats"), name, repr(at))

    def stats(self, portal: str) -> dict[str, float]:
        raw = as_dict(self.client.hgetall(self._key(portal, "stats")))
        return {name: float(value) for name, value in raw.items()}

    def portals(self) -> dict[str, str]:
        """Every portal a sync has pulled: id → label."""
        return as_dict(self.client.hgetall(self._index))


def lag_seconds(stats: dict[str, float], now: float | None = None) -> float | None:
    """Portal lag: seconds since the sync last found nothing pending beyond what it
    had pulled (every claim pending now arrived after that): an upper bound on the
    wait of the oldest pending claim not yet pulled (before the first such pull, since
    the first pull). None before any pull."""
    caught_up = stats.get("caught_up_at", stats.get("first_pull_at"))
    if caught_up is None:
        return None
    return max(0.0, (time.time() if now is None else now) - caught_up)
