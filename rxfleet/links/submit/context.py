"""What the submit link works with: its context, its report, the sender seam.

``SubmitContext`` holds the stores, the token source and the ``Sender`` that
carries a window's claims to the gateway (``rxfleet.gateway.aio.AioSender``
in the fleet; a scripted double in the unit tests). ``LocalPause`` is what
this process already knows of the fleet pause.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from config import Settings
from rxfleet.claims.phi import VaultCipher
from rxfleet.claims.rejects import RejectMatrix
from rxfleet.claims.work import WorkRecord
from rxfleet.errors import ConfigError, GatewayUnavailable, RxFleetError
from rxfleet.gateway.client import Job, Pricing
from rxfleet.links import LinkReport
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.metrics import MetricsStore
from rxfleet.stores.order import ClaimOrder
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.routes import RouteMemo
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import Token, TokenSource, TokenStore

log = logging.getLogger("rxfleet.submit")

MAX_REPLAYS = 2  # 401 replays of one claim within a round


class LocalPause:
    """What this process already knows of the fleet pause, checked before every request.

    The fleet pause lives in Redis and is read once per window; a 429/503 one
    window of this process just got is known here at once, so no other submit
    task of the process starts a request after it (other processes learn it at
    their next window: their requests in flight were admitted before it).
    """

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def note(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def remaining(self) -> float:
        return max(0.0, self._until - time.monotonic())


class Adjudicated(Protocol):
    """What the link reads of a gateway answer (``rxfleet.gateway.client.Adjudication``)."""

    @property
    def status(self) -> str: ...

    @property
    def reject_codes(self) -> Sequence[str]: ...

    @property
    def authorization_number(self) -> str | None: ...

    @property
    def pricing(self) -> Pricing | None: ...


Heard = Adjudicated | RxFleetError
Timed = tuple[Heard, float]  # an answer or an error, and the seconds its request took


class Sender(Protocol):
    """Sends a window's claims, however many (one included), concurrently.

    ``go`` is asked right before each request (False: hold it back, its slot in
    the answer is None); ``seen`` hears each answer as it comes.
    """

    def send(
        self, jobs: Sequence[Job], go: Callable[[], bool], seen: Callable[[Heard], None]
    ) -> Sequence[Timed | None]: ...


@dataclass
class SubmitContext:
    runs: RunStore
    tokens: TokenStore
    pause: FleetPause
    routes: RouteMemo
    gateway: TokenSource  # the token endpoint (the gateway client's ``fetch_token``)
    sender: Sender  # the claim endpoint: every request of every window
    vault: VaultCipher
    settings: Settings
    health: Breaker | None = None
    auth: Breaker | None = None
    local_pause: LocalPause = field(default_factory=lambda: LocalPause())  # one per process
    window: Callable[[], int] | None = None  # a window's size now (None: RXFLEET_SUBMIT_INFLIGHT)
    rejects: RejectMatrix | None = None  # which reject codes are transient (90-98)
    owner: str = "local"  # whose leases these are (the task id)
    metrics: MetricsStore | None = None  # None: no fleet counters (unit tests)
    order: ClaimOrder | None = None  # None: claims of one claim id are not ordered

    def window_size(self) -> int:
        """Claims a window plans: the sender's share of the fleet's in-flight limit, and
        never fewer than ``RXFLEET_SUBMIT_INFLIGHT`` (a smaller share holds the rest at the
        sender's gate: a window of a few claims the gateway keeps refusing must not be a
        round without progress while the others wait)."""
        own = self.settings.submit_inflight
        return own if self.window is None else max(own, self.window())


@dataclass(frozen=True)
class Retry:
    """Come back for the open claims in ``countdown`` s, with this many failed rounds."""

    countdown: float
    failures: int


@dataclass
class SubmitReport(LinkReport):
    still_open: int = 0
    retry_in: float | None = None
    reason: str | None = None
    deferred: bool = False
    network_calls: int = 0
    retry: Retry | None = None

    def as_dict(self) -> dict[str, Any]:
        summary = super().as_dict()
        summary.pop("retry", None)
        return summary


def route_of(record: WorkRecord) -> tuple[str, str]:
    """The claim's BIN/PCN (an NCPDP claim may have no PCN)."""
    claim = record.claim or {}
    return str(claim["bin"]), str(claim.get("pcn") or "")


def token_or_wait(get: Callable[[], Token]) -> Token:
    """A token, or a retryable error when the token endpoint refuses our credentials.

    Refused credentials do not fix themselves, but an operator can fix them while
    the claims wait; they are retried with backoff, then rejected 99, never lost.
    """
    try:
        return get()
    except ConfigError as exc:
        log.error("token endpoint refused the client credentials: %s", exc)
        raise GatewayUnavailable(f"token endpoint: {exc}") from None


def backoff(settings: Settings, failures: int) -> float:
    """Exponential backoff with full jitter, under the cap."""
    ceiling = min(settings.backoff_cap, settings.backoff_base * 2.0**failures)
    return random.uniform(0.0, ceiling)
