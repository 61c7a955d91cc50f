"""Beat exactly once: ``celery beat`` schedules only while it holds the fleet's lease.

Every beat of the fleet uses this scheduler (``beat_scheduler`` in ``workers.app``):
a ``PersistentScheduler`` (the schedule file of ``--schedule``) whose tick first
takes or renews the lease in Redis (``rxfleet.stores.beat``). A second beat,
started by mistake or as a hot standby on another host, finds the lease held:
it sends nothing, says so once, and asks again every third of
``RXFLEET_BEAT_LEASE``; when the holder dies its lease runs out and the standby
takes over. A beat that cannot reach Redis schedules nothing (it could not
know whether another does); it says so and keeps asking.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
from typing import Any

import redis
from celery.beat import PersistentScheduler

from config import get_settings
from rxfleet.stores.beat import BeatLease
from rxfleet.stores.connection import get_redis

log = logging.getLogger("rxfleet.beat")


def beat_name() -> str:
    """This beat's name in the lease: host, pid and a random tail (a restarted pid differs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class LeasedScheduler(PersistentScheduler):
    """Schedules only while it holds the beat lease; a standby otherwise."""

    _lease: BeatLease | None = None
    _leading: bool | None = None  # None: not yet asked

    def tick(self, *args: Any, **kwargs: Any) -> float:
        lease = self.lease()
        if not self._hold(lease):
            return lease.every
        return float(min(super().tick(*args, **kwargs), lease.every))

    def lease(self) -> BeatLease:
        if self._lease is None:
            settings = get_settings()
            self._lease = BeatLease(
                get_redis(), settings.key_prefix, beat_name(), settings.beat_lease
            )
        return self._lease

    def _hold(self, lease: BeatLease) -> bool:
        try:
            leading = lease.hold()
        except redis.RedisError as exc:
            if self._leading is not False:
                log.warning("beat: Redis unreachable (%s): scheduling nothing until it is back",
                            type(exc).__name__)  # fmt: skip
            self._leading = False
            return False
        if leading != self._leading:
            self._say(lease, leading)
        self._leading = leading
        return leading

    def _say(self, lease: BeatLease, leading: bool) -> None:
        if leading:
            log.warning("beat: %s holds the beat lease: scheduling for the fleet", lease.owner)
            return
        log.warning("beat: standby; %s schedules for the fleet (lease %s): this beat takes over "
                    "if it stops", lease.holder(), lease.key)  # fmt: skip

    def close(self) -> None:
        if self._lease is not None and self._leading:
            with contextlib.suppress(redis.RedisError):
                self._lease.release()  # a standby takes over at its next ask, not after the TTL
        super().close()
