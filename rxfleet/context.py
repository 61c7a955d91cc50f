"""The per-process objects the links and commands need, built from the settings:
the Redis stores, the database, the gateway client (the token endpoint, one
pooled ``requests.Session`` per process), the claim sender (one aiohttp event
loop and session per process) and the breakers (whose buffered counts are per
process).

Stores are thin and built on demand; the rest is kept for the process and
``forget`` drops it after a fork (a socket or a thread never crosses a fork).
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol, TypeGuard, TypeVar

import redis

from config import Settings, get_settings
from rxfleet.claims.phi import PhiTokenizer, VaultCipher
from rxfleet.claims.rejects import RejectMatrix, matrix
from rxfleet.errors import ConfigError, InfrastructureError
from rxfleet.gateway.client import GatewayClient
from rxfleet.gateway.inflight import Adapt, Period
from rxfleet.links.ingest import Ingest
from rxfleet.links.submit import LocalPause, SubmitContext
from rxfleet.phikeys import token_sealer, tokenizer, vault
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.clock import quick
from rxfleet.stores.connection import get_redis
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.database import Database
from rxfleet.stores.formulary import FormularyCache
from rxfleet.stores.inflight import FleetInflight, limit_in_force
from rxfleet.stores.metrics import MetricsStore
from rxfleet.stores.order import ClaimOrder
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.pg import Notice
from rxfleet.stores.privileges import Secured
from rxfleet.stores.rate import GatewayRate, rate_in_force
from rxfleet.stores.routes import RouteMemo
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import Rotation, TokenStore
from rxfleet.stores.workers import WorkerRoll

log = logging.getLogger(__name__)
_client: GatewayClient | None = None
_kept: dict[tuple[object, ...], object] = {}
_lock = threading.Lock()
if TYPE_CHECKING:  # aiohttp is loaded by the processes that send, not by every command
    from rxfleet.gateway.aio import AioSender, Pace

T = TypeVar("T")
#: How this process meets a database outage: seconds a statement waits, and who is told.
_database_outage: tuple[float, Notice | None] = (0.0, None)


def _keep(key: tuple[object, ...], kind: type[T], make: Callable[[], T]) -> T:
    """One object per process for ``key`` (the settings that shape it are part of the key)."""
    with _lock:
        found = _kept.get(key)
        if not isinstance(found, kind):
            found = _kept[key] = make()
        return found


def rejects() -> RejectMatrix:
    """The reject-code matrix the settings name (read once a path: ``rejects.matrix``)."""
    return matrix(get_settings().reject_matrix)


def runs() -> RunStore:
    settings = get_settings()
    return RunStore(get_redis(), settings.key_prefix, settings.run_ttl_seconds)


def ingest(run_id: str) -> Ingest:
    """Ingestion for ``run_id`` under this process's PHI and vault keys (derived once)."""
    settings = get_settings()
    keys = (id(settings), settings.phi_key, settings.vault_key)
    return Ingest(
        run_id,
        _keep(("tokenizer", *keys), PhiTokenizer, lambda: tokenizer(settings)),
        _keep(("vault", *keys), VaultCipher, lambda: vault(settings)),
    )


def tokens() -> TokenStore:
    settings = get_settings()
    return TokenStore(
        get_redis(),
        settings.key_prefix,
        lock_timeout=settings.token_lock_timeout,
        lock_wait=settings.token_lock_wait,
        sealer=token_sealer(settings),
        on_rotate=_record_rotation if settings.database_url else None,
    )


def _record_rotation(rotation: Rotation) -> None:
    """A rotation's audit record in the database; a database outage does not stop the
    rotation (the claims need the token), it is logged without the token."""
    old = rotation.old_expires_at
    try:
        database().record_rotation(
            rotation.rotated_by,
            rotation.reason,
            datetime.fromtimestamp(old, UTC) if old else None,
            datetime.fromtimestamp(rotation.new_expires_at, UTC),
        )
    except InfrastructureError as exc:
        log.error("token rotation (%s, by %s) not recorded: %s", rotation.reason,
                  rotation.rotated_by, exc)  # fmt: skip


def token_info() -> TokenStore:
    """The token store for reading the token's expiry and counters only (``info``,
    ``stats``): no vault key needed; it cannot open, store or rotate a token."""
    settings = get_settings()
    return TokenStore(get_redis(), settings.key_prefix, sealer=_NO_KEY)


class _NoKey:
    """The sealer of a read-only token store: any use of the token itself is refused."""

    def _refuse(self, *_: object) -> str:
        raise ConfigError("this process holds no RXFLEET_VAULT_KEY: it cannot use the token")

    seal = open = digest = _refuse


_NO_KEY = _NoKey()


def health_breaker() -> Breaker:
    """The gateway-health breaker: transport failures and 5xx without Retry-After."""
    s = get_settings()
    return _breaker("health", s.health_breaker_threshold, s.health_breaker_min_requests)


def auth_breaker() -> Breaker:
    """The authentication breaker: 401s a freshly rotated token did not cure."""
    s = get_settings()
    return _breaker("auth", s.auth_breaker_threshold, s.auth_breaker_min_requests)


def _breaker(name: str, threshold: float, least: int) -> Breaker:
    s = get_settings()
    shape = (s.key_prefix, s.breaker_window, threshold, least, s.breaker_cooldown,
             s.breaker_cooldown_max)  # fmt: skip
    return _keep(
        (name, *shape), Breaker, lambda: Breaker(get_redis(), s.key_prefix, name, *shape[1:])
    )


def database() -> Database:
    """The process's handle on the system of record, as the fleet's role (migrated on
    first use: by the owner's role when this process has its URL, see ``secure``)."""
    settings = get_settings()
    url = settings.database_url_or_raise()

    def make() -> Database:
        if settings.database_owner_url is not None:
            secure(settings)
        seconds, notice = _database_outage
        db = Database(url, outage=seconds, notice=notice)
        db.upgrade()  # nothing pending: nothing written
        return db

    return _keep(("db", url), Database, make)


def ride_database_outages(seconds: float, notice: Notice) -> None:
    """This process's statements wait up to ``seconds`` for the database to come back
    and ``notice`` is told when it goes and comes (the CLI; a worker retries its link)."""
    global _database_outage
    _database_outage = (seconds, notice)
    with _lock:
        kept = [thing for thing in _kept.values() if isinstance(thing, Database)]
    for db in kept:
        db.outage, db.notice = seconds, notice


def secure(settings: Settings) -> tuple[list[int], Secured]:
    """As the owner (``RXFLEET_DATABASE_OWNER_URL``, else the fleet's own URL): apply the
    migrations, set the trail's retention floor, grant the fleet's role least privilege."""
    owner_url = settings.database_owner_url
    url = owner_url.get_secret_value() if owner_url else settings.database_url_or_raise()
    with Database(url) as owner:
        applied = owner.upgrade()
        fleet = settings.database_url if owner_url else None
        return applied, owner.secure(fleet, settings.retention_days)


def sender() -> AioSender:
    """The submit link's requests in flight: one event loop and session per process,
    each request in a slot of the fleet's rate when ``RXFLEET_GATEWAY_RATE`` sets one,
    as many at once as its share of the fleet's in-flight limit (aiohttp is loaded
    here, by the processes that send, not by every command)."""
    from rxfleet.gateway.aio import AioSender

    settings = get_settings()
    shape = (settings.submit_inflight, settings.gateway_inflight_max, settings.gateway_rate)
    make = lambda: AioSender(gateway_client(), _pace(settings), _adapt(settings))  # noqa: E731
    return _keep(("sender", *shape), AioSender, make)


#: Seconds a sender that could not reach Redis keeps its share before it reports again.
ADAPT_HOLD_S = 5.0


def _adapt(settings: Settings) -> Adapt:
    """Report each period to the fleet's limit; the share back (a Redis that does not
    answer in half a second: the share stays, and nothing is asked for ``ADAPT_HOLD_S``)."""
    fleet = FleetInflight(quick(get_redis(), 0.5), settings.submit_inflight,
                          settings.gateway_inflight_max, settings.gateway_rate,
                          settings.key_prefix)  # fmt: skip
    me = f"{socket.gethostname()}:{os.getpid()}"
    share, quiet_until = [settings.submit_inflight], [0.0]

    def adapt(period: Period) -> int:
        if time.monotonic() >= quiet_until[0]:
            try:
                share[0] = fleet.report(me, period.sent, period.overloaded, period.latency,
                                        wanted=period.wanted,
                                        at_overload=period.at_overload).mine  # fmt: skip
            except redis.RedisError:
                quiet_until[0] = time.monotonic() + ADAPT_HOLD_S
        return share[0]

    return adapt


def gateway_inflight() -> int | None:
    """The fleet's gateway in-flight limit as last found (None: no sender lately)."""
    return limit_in_force(get_redis(), get_settings().key_prefix)


def gateway_rate() -> float | None:
    """The rate the fleet's submit workers send at (None: no limit in force)."""
    return rate_in_force(get_redis(), get_settings().key_prefix)


def _pace(settings: Settings) -> Pace | None:
    if not settings.gateway_rate:
        return None
    rate = GatewayRate(get_redis(), settings.gateway_rate, settings.key_prefix)

    def take() -> tuple[bool, float]:
        slot = rate.take()
        return slot.granted, slot.seconds

    return take


def order() -> ClaimOrder:
    return ClaimOrder(get_redis(), get_settings().key_prefix)


def pause() -> FleetPause:
    return FleetPause(get_redis(), get_settings().key_prefix)


def workers() -> WorkerRoll:
    """Which workers were heard from lately, per queue (their heartbeats)."""
    return WorkerRoll(get_redis(), get_settings().key_prefix)


def routes() -> RouteMemo:
    settings = get_settings()
    return RouteMemo(get_redis(), settings.key_prefix, settings.route_miss_ttl)


def crosswalk() -> CrosswalkCache:
    return CrosswalkCache(get_redis(), get_settings().key_prefix)


def formulary() -> FormularyCache:
    """The live formulary in Redis (published by ``rxfleet webhooks``)."""
    return FormularyCache(get_redis(), get_settings().key_prefix)


def metrics() -> MetricsStore:
    """The fleet's counters in Redis (one hash; ``rxfleet metrics`` exports them)."""
    return MetricsStore(get_redis(), get_settings().key_prefix)


def gateway_client() -> GatewayClient:
    """One gateway client (one requests.Session) per worker process."""
    global _client
    if _client is None:
        _client = GatewayClient(get_settings())
    return _client


def forget() -> None:
    """Drop the process's kept objects (after a fork: never share a socket or a thread).

    What this process opened is closed; what a parent opened is left to the parent.
    """
    global _client
    _client = None
    with _lock:
        kept = list(_kept.values())
        _kept.clear()
    for thing in kept:
        if isinstance(thing, Database) or _own_sender(thing):
            thing.close()


class _Closing(Protocol):
    def close(self) -> None: ...


def _own_sender(thing: object) -> TypeGuard[_Closing]:
    """A sender this process made (one a parent made before a fork is the parent's)."""
    aio = sys.modules.get("rxfleet.gateway.aio")  # not loaded: no sender was made here
    return aio is not None and isinstance(thing, aio.AioSender) and thing.pid == os.getpid()


def submit_context(owner: str) -> SubmitContext:
    settings = get_settings()
    return SubmitContext(
        runs=runs(),
        tokens=tokens(),
        pause=pause(),
        routes=routes(),
        gateway=gateway_client(),
        vault=vault(settings),
        settings=settings,
        health=health_breaker(),
        auth=auth_breaker(),
        sender=(the_sender := sender()),
        window=the_sender.window,
        local_pause=_keep(("local-pause",), LocalPause, LocalPause),
        rejects=rejects(),
        metrics=metrics(),
        order=order(),
        owner=owner,
    )


def batch(first: int, count: int) -> range:
    return range(first, first + count)
