"""The fleet's one portal token, in Redis, rotated single-flight under a lock.

The token lives in a hash: ``access_token``, ``expires_at`` (epoch seconds),
``version`` (increments on each rotation). Rules:

* Readers take it as it is while it has life left.
* Rotation happens under a redis-py ``Lock`` with a timeout; the holder re-reads
  after acquiring (someone may have rotated while it waited), fetches, and stores
  with compare-and-set on ``version``: if its lock expired mid-fetch and another
  process stored a newer token, the late write is refused (no stale overwrite).
* A worker that got 401 invalidates exactly the token it used
  (compare-and-delete), so a newer token stored meanwhile survives; the old expiry
  and the 401's reason stay for the rotation's audit record (``Rotation``: who, why,
  the old and the new expiry, never the token; the fleet writes it to the database's
  ``token_rotations``).
* At rest the token is sealed (AES-256-GCM under an HKDF subkey of the vault
  key, ``rxfleet.phikeys.token_sealer``) and opened on read; compare-and-delete
  compares a keyed digest (``token_digest``). A token that no longer opens (the
  vault key was rotated) counts as missing: the next reader rotates it.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import redis
from redis.commands.core import Script
from redis.exceptions import LockError

from rxfleet.errors import InfrastructureError
from rxfleet.stores import clock, lua
from rxfleet.stores.connection import as_dict, as_text
from rxfleet.stores.metrics import slug


class TokenSource(Protocol):
    """What fetches a fresh token: the gateway client's ``fetch_token``."""

    def fetch_token(self) -> _Grant: ...


class Sealer(Protocol):
    """Seals the token at rest: ``rxfleet.claims.phi.SecretSealer``."""

    def seal(self, secret: str) -> str: ...

    def open(self, sealed: str) -> str | None: ...

    def digest(self, secret: str) -> str: ...


class _Grant(Protocol):
    @property
    def access_token(self) -> str: ...

    @property
    def expires_in(self) -> float: ...


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: float
    version: int
    lifetime: float = 0.0

    def ttl(self, now: float | None = None) -> float:
        return self.expires_at - (clock.now() if now is None else now)


@dataclass(frozen=True)
class Rotation:
    """A token rotation's audit record: who, why, the old and new expiry (never the token).

    ``reason``: ``rej_001``/``rej_004`` (a 401 invalidated it: invalid token, session
    expired), ``expired`` (its time ran out), ``due`` (the beat, within the margin),
    ``needed`` (a worker needed more time left than it had), ``none`` (no token yet)."""

    rotated_by: str
    reason: str
    old_expires_at: float | None
    new_expires_at: float


def rotator() -> str:
    """Who rotates: this host and process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class TokenInfo:
    """What is known of the stored token without opening it: no key needed."""

    expires_at: float
    version: int

    def ttl(self, now: float | None = None) -> float:
        return self.expires_at - (clock.now() if now is None else now)


@dataclass
class TokenStore:
    client: redis.Redis
    prefix: str = "rx"
    lock_timeout: float = 30.0
    lock_wait: float = 20.0
    #: None stores the token in clear (unit tests only); the fleet always passes one.
    sealer: Sealer | None = None
    #: Called with each rotation this process made (the fleet writes it to the database).
    on_rotate: Callable[[Rotation], None] | None = None

    _scripts: dict[str, Script] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._scripts = lua.register(self.client, "tokens", ("store_if_version", "delete_if_token"))

    @property
    def key(self) -> str:
        return f"{self.prefix}:token"

    @property
    def _stats(self) -> str:
        return f"{self.prefix}:token:stats"

    @property
    def _lock(self) -> str:
        return f"{self.prefix}:lock:token"

    def current(self) -> Token | None:
        """The stored token while it has at least a second left, else None."""
        raw = as_dict(self.client.hgetall(self.key))
        if "access_token" not in raw:
            return None
        value = self._open(raw["access_token"])
        if value is None:
            return None
        token = Token(
            value,
            float(raw["expires_at"]),
            int(raw["version"]),
            float(raw.get("lifetime", 0.0)),
        )
        return token if token.ttl() > 1.0 else None

    def info(self) -> TokenInfo | None:
        """The stored token's expiry and version, never its value: read-only processes
        (``rxfleet stats``, ``token status``, the exporter) hold no vault key."""
        raw = as_dict(self.client.hgetall(self.key))
        if "access_token" not in raw or "expires_at" not in raw:
            return None
        info = TokenInfo(float(raw["expires_at"]), int(raw.get("version", 0)))
        return info if info.ttl() > 1.0 else None

    def ensure(self, source: TokenSource, min_ttl: float = 1.0) -> Token:
        """A token with at least ``min_ttl`` seconds left, rotating if need be."""
        token = self.current()
        if token is not None and token.ttl() >= min_ttl:
            return token
        return self.rotate(source, min_ttl=min_ttl)

    def rotate(self, source: TokenSource, *, min_ttl: float = 1.0, why: str = "needed") -> Token:
        """Single-flight rotation: one process fetches, the others reuse its token."""
        lock = self.client.lock(
            self._lock, timeout=self.lock_timeout, blocking_timeout=self.lock_wait
        )
        if not lock.acquire():
            raise InfrastructureError("timed out waiting for the token lock")
        try:
            return self._rotate_locked(source, min_ttl, why)
        finally:
            try:
                lock.release()
            except LockError:  # expired while we fetched: the CAS below already guarded
                self._count("lock_lost")

    def _rotate_locked(self, source: TokenSource, min_ttl: float, why: str) -> Token:
        token = self.current()
        if token is not None and token.ttl() >= min_ttl:
            return token  # rotated by someone else while we waited
        before = as_dict(self.client.hgetall(self.key))
        seen = before.get("version") or "0"
        grant = source.fetch_token()
        lifetime = float(grant.expires_in)
        fresh = Token(grant.access_token, clock.now() + lifetime, int(seen) + 1, lifetime)
        if self._store_if_version(str(seen), fresh):
            self._count("fetches")
            self._audit(before, why, fresh)
            return fresh
        self._count("stale_writes_refused")
        newer = self.current()
        if newer is None:
            raise InfrastructureError("token rotation raced and left no token")
        return newer

    def _audit(self, before: dict[str, str], why: str, fresh: Token) -> None:
        if self.on_rotate is None:
            return
        old = float(before.get("invalidated_expires_at") or before.get("expires_at") or 0)
        if "invalidated_reason" in before:
            why = before["invalidated_reason"]
        elif not before:
            why = "none"
        elif old and old <= clock.now() + 1.0 and why != "due":
            why = "expired"
        self.on_rotate(Rotation(rotator(), why, old or None, fresh.expires_at))

    def _store_if_version(self, seen: str, token: Token) -> bool:
        args = [
            seen,
            self.sealer.seal(token.value) if self.sealer else token.value,
            repr(token.expires_at),
            str(token.version),
            repr(clock.now()),
            repr(token.lifetime),
            self._digest(token.value),
        ]
        return bool(self._scripts["store_if_version"](keys=[self.key], args=args))

    def invalidate(self, used: str, reason: str) -> bool:
        """Drop the token only if it is still the one we used; count why."""
        self._count(f"auth_{reason}")
        sealed = self.sealer is not None  # then only the token's digest is compared
        args = [self._digest(used), "token_digest"] if sealed else [used, "access_token"]
        args.append(slug(reason))
        return bool(self._scripts["delete_if_token"](keys=[self.key], args=args))

    def _open(self, stored: str) -> str | None:
        return self.sealer.open(stored) if self.sealer else stored

    def _digest(self, value: str) -> str:
        return self.sealer.digest(value) if self.sealer else ""

    def refresh_if_due(self, source: TokenSource, margin: float) -> bool:
        """The beat's job: rotate when less than the margin is left.

        The margin is the configured one, or a third of the token's lifetime
        when that is shorter: a 5-second token is not rotated on every tick.
        """
        token = self.current()
        if token is not None:
            margin = min(margin, token.lifetime / 3) if token.lifetime > 0 else margin
            if token.ttl() > margin:
                return False
        self.rotate(source, min_ttl=margin, why="due")
        return True

    def version(self) -> int:
        """How many times the token was rotated (the version survives invalidation)."""
        return int(as_text(self.client.hget(self.key, "version")) or 0)

    def clear(self) -> None:
        self.client.delete(self.key, self._stats, self._lock)

    def stats(self) -> dict[str, int]:
        raw = as_dict(self.client.hgetall(self._stats))
        return {k: int(v) for k, v in raw.items()}

    def _count(self, what: str) -> None:
        self.client.hincrby(self._stats, what, 1)
