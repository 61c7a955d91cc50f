"""``rxfleet sync``: claims pulled from a payer portal, in its order, into the fleet;
the portal acknowledged only up to the last claim whose result is recorded.

Runs: a portal is a continuous source, so its claims go into one open run per
portal and UTC day (``runs.input_hash`` ``portal:{id}:{day}``), appended a page at a
time (one page, one batch, one chain); the first pull of a new day closes the
earlier days' runs (their total is known then; they finish once each claim is
recorded).

Exactly once, whatever is killed when:

1. a page is pulled ``after`` the last claim taken (``portal_claims``'s last row);
2. its claims are written to ``portal_claims`` (position, cursor, run, seq, batch)
   in one transaction, *then* ingested as the producer does (validation at intake,
   PHI sealed into the vault, tokens), added to Redis and sent as a chain;
3. the portal is acknowledged through the last claim of the longest run of
   recorded claims from the oldest unacknowledged one (``ack_point``), and that
   is written back.

A sync killed between 2 and its Redis write leaves claims that are neither
recorded nor in Redis: the next sync (or this one, after
``RXFLEET_SYNC_RECOVER_SECONDS``) pulls the unacknowledged claims again from the
portal and puts exactly those back under their run and seq (same claim id, same
Idempotency-Key: the gateway replays, never adjudicates twice). Killed between
the acknowledgement and its write: the same cursor is acknowledged again (the
portal acknowledges nothing twice). Nothing is acknowledged ahead of its record.

One sync pulls a portal at a time (a lease in Redis, ``rxfleet.stores.portal``);
a second waits and takes over when the first's lease runs out. Requests are paced
by ``X-RateLimit-Remaining``/``-Reset`` (``rxfleet.gateway.pacing``) and honour
``Retry-After``; each carries the shared portal token.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis

from config import Settings
from rxfleet.claims.work import WorkRecord
from rxfleet.errors import (
    AuthenticationFailed,
    ConfigError,
    GatewayTimeout,
    GatewayUnavailable,
    InfrastructureError,
    RateLimited,
)
from rxfleet.formats.base import Record
from rxfleet.gateway.pacing import Pacer, RateLimit
from rxfleet.gateway.portal import Page, PortalClient
from rxfleet.lifecycle import Say, close_source_run, open_source_run
from rxfleet.links.ingest import Ingest, mark_duplicates
from rxfleet.producer import SendBatch
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.database import Database
from rxfleet.stores.pg import Row
from rxfleet.stores.portal import PortalStore, portal_id, portal_label
from rxfleet.stores.portal_record import PORTAL_RUN_KEY, Pulled
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import TokenSource, TokenStore

log = logging.getLogger("rxfleet.sync")
T = TypeVar("T")
MakeIngest = Callable[[str], Ingest]
#: Seconds between looks for room while the fleet holds its window (the producer's).
ROOM_POLL = 0.2


def ack_point(rows: Sequence[Row]) -> tuple[int, str] | None:
    """Where to acknowledge: (position, cursor) of the last claim that has an ack cursor
    in the longest run of recorded claims from the first of ``rows`` (the oldest
    unacknowledged, in the portal's order); None when there is none."""
    point = None
    for row in rows:
        if not row["recorded"]:
            break
        if row["ack_cursor"] is not None:
            point = (int(row["pos"]), str(row["ack_cursor"]))
    return point


def page_cursors(page: Page) -> list[tuple[str, str | None]]:
    """Each claim's (cursor, ack cursor): its own ``cursor`` (taken off the claim) when
    it has one; else ``{page cursor}#{n}``, which cannot be acknowledged at. The page's
    last claim is acknowledged at the page's cursor when it has none of its own."""
    out: list[tuple[str, str | None]] = []
    for n, claim in enumerate(page.claims, 1):
        own = claim.pop("cursor", None)
        out.append((own, own) if isinstance(own, str) and own else (f"{page.cursor}#{n}", None))
    if out and out[-1][1] is None and page.cursor:
        out[-1] = (out[-1][0], page.cursor)
    return out


def utc_day(now: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if now is None else now, UTC).date().isoformat()


@dataclass
class SyncParts:
    """What a sync works with (``rxfleet.context`` builds them for the CLI)."""

    portal: PortalClient
    store: PortalStore
    runs: RunStore
    db: Database
    tokens: TokenStore
    token_source: TokenSource
    crosswalks: CrosswalkCache
    settings: Settings
    send: SendBatch
    ingest: MakeIngest
    say: Say = log.info


@dataclass
class Caller:
    """Portal requests with the shared token, paced, riding through 401, 429 and 503;
    the lease renewed while it waits (``keep``: False when the lease is lost)."""

    parts: SyncParts
    portal: str
    keep: Callable[[], bool]
    pacer: Pacer = field(default_factory=Pacer)

    def call(self, request: Callable[[str, float], T], limit_of: Callable[[T], RateLimit]) -> T:
        while True:
            self._wait(self.pacer.delay())
            token = self.parts.tokens.ensure(self.parts.token_source)
            try:
                answer = request(token.value, token.ttl())
            except AuthenticationFailed:
                self.parts.tokens.invalidate(token.value, "REJ_001")
                self._refused("401", None)
                continue
            except (RateLimited, GatewayUnavailable, GatewayTimeout) as exc:
                self._refused(_status(exc), exc.retry_after)
                continue
            paced = self.pacer.observe(limit_of(answer))
            self.parts.store.counts(self.portal, {"requests|200": 1, "paced_seconds": paced})
            return answer

    def _refused(self, status: str, retry_after: float | None) -> None:
        hold = self.pacer.refused(retry_after)
        names = {"429": "throttled", "503": "unavailable"}
        counts: dict[str, float] = {f"requests|{status}": 1}
        if status in names:
            counts[names[status]] = 1
        self.parts.store.counts(self.portal, counts)
        log.warning("portal answered %s: next request in %.1f s", status, hold)

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, renewing the lease; InfrastructureError when it is lost."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if not self.keep():
                raise InfrastructureError("another sync process took the portal over")
            time.sleep(min(left, 1.0))


def _status(exc: Exception) -> str:
    if isinstance(exc, RateLimited):
        return "429"
    return "503" if isinstance(exc, GatewayUnavailable) else "timeout"


@dataclass
class PortalRun:
    """The run today's claims go into, and its next sequence number."""

    run_id: str
    day: str
    next_seq: int
    ingest: Ingest


class _Feeding:
    """Putting pulled claims into the fleet, and putting back the ones Redis lost
    (``Sync``'s part that re-reads the portal)."""

    parts: SyncParts
    portal: str
    caller: Caller

    def resend_last(self) -> None:
        """Send the last batch's chain again when it has claims in flight: the sync
        that pulled it may have died before it sent it (links skip what is done)."""
        rows = self.parts.db.portal_unacked(self.portal, 1)
        last = self.parts.db.portal_last(self.portal)
        if not rows or last is None:
            return
        known = self.parts.db.portal_known(self.portal, [str(last["cursor"])])
        row = known.get(str(last["cursor"]))
        if row is not None and not row["recorded"]:
            self.parts.send(str(row["run_id"]), int(row["batch_first"]), int(row["batch_count"]))

    def _page(self, after: str | None, limit: int) -> Page:
        return self.caller.call(
            lambda token, ttl: self.parts.portal.pending(after, limit, token, ttl),
            lambda page: page.limit,
        )

    def enqueue(
        self, run_id: str, ingest: Ingest, rows: Sequence[Pulled], claims: Sequence[dict[str, Any]]
    ) -> int:
        """Ingest ``claims`` (``rows``' claims, one batch) as the producer does; into Redis
        where absent; the batch's chain sent. Claims added."""
        items = [_ingested(ingest, row, claim) for row, claim in zip(rows, claims, strict=True)]
        works = [work for work, _ in items]
        mark_duplicates(self.parts.runs, run_id, works)
        first, count = rows[0].batch_first, rows[0].batch_count
        self.parts.runs.register_batch(run_id, first, count)
        blobs = {work.seq: blob for work, blob in items if blob is not None}
        added = self.parts.runs.add(run_id, works, blobs, only_missing=True)
        self.parts.send(run_id, first, count)
        return added

    # -- claims lost with Redis or with a sync ---------------------------------

    def lost(self) -> dict[str, Row]:
        """Unacknowledged claims neither in Redis nor recorded, by cursor (Redis is
        asked first: a claim that leaves it has been recorded)."""
        parts = self.parts
        open_rows = [r for r in parts.db.portal_unacked(self.portal, 50_000) if not r["recorded"]]
        by_run: dict[str, list[Row]] = {}
        for row in open_rows:
            by_run.setdefault(str(row["run_id"]), []).append(row)
        lost: dict[str, Row] = {}
        for run_id, rows in by_run.items():
            present = parts.runs.existing(run_id, [int(r["seq"]) for r in rows])
            gone = [r for r in rows if int(r["seq"]) not in present]
            if gone:
                seqs = [int(r["seq"]) for r in gone]
                recorded = parts.db.recorded(run_id, min(seqs), max(seqs) + 1)
                lost.update({str(r["cursor"]): r for r in gone if int(r["seq"]) not in recorded})
        return lost

    def recover_stalled(self) -> None:
        """Every ``RXFLEET_SYNC_RECOVER_SECONDS``: put lost claims back (Redis lost them)."""
        rows = self.parts.db.portal_unacked(self.portal, 1)
        if not rows or rows[0]["recorded"]:
            return
        age = time.time() - rows[0]["pulled_at"].timestamp()
        if age >= self.parts.settings.sync_recover_seconds:
            self.recover(self.lost())

    def recover(self, lost: dict[str, Row]) -> None:
        """Pull the unacknowledged claims again and enqueue the ``lost`` ones under their
        own run and seq (the portal still lists them: they were never acknowledged)."""
        after: str | None = None
        while lost:
            page = self._page(after, self.parts.settings.sync_page)
            if not page.claims:
                break
            after = page.cursor
            pairs = zip(page_cursors(page), page.claims, strict=True)
            self._put_back([(lost.pop(c), claim) for (c, _), claim in pairs if c in lost])
        if lost:
            log.error("%d pulled claims are no longer listed by the portal", len(lost))

    def _put_back(self, found: list[tuple[Row, dict[str, Any]]]) -> None:
        batches: dict[tuple[str, int], list[tuple[Pulled, dict[str, Any]]]] = {}
        for row, claim in found:
            pulled = Pulled(int(row["pos"]), str(row["cursor"]), row["ack_cursor"],
                            str(row["run_id"]), int(row["seq"]), int(row["batch_first"]),
                            int(row["batch_count"]))  # fmt: skip
            batches.setdefault((pulled.run_id, pulled.batch_first), []).append((pulled, claim))
        for (run_id, _), items in batches.items():
            ingest = self.parts.ingest(run_id)
            added = self.enqueue(run_id, ingest, [p for p, _ in items], [c for _, c in items])
            self.parts.store.counts(self.portal, {"recovered": added})
            self.parts.say(f"run {run_id}: {added} claims lost from Redis pulled again")


@dataclass
class Sync(_Feeding):
    """One sync process on one portal (the module docstring says how)."""

    parts: SyncParts
    holder: str
    url: str = ""
    portal: str = ""
    after: str | None = None  # the cursor of the last claim taken
    pos: int = 0  # its position
    run: PortalRun | None = None
    started: bool = False  # the state above was read under the present lease
    caller: Caller = field(init=False)

    def __post_init__(self) -> None:
        self.url = self.url or str(self.parts.settings.portal_url)
        self.portal = portal_id(self.url)
        settings = self.parts.settings
        pacer = Pacer(settings.sync_rate_reserve, settings.backoff_base, settings.backoff_cap,
                      settings.retry_after_cap)  # fmt: skip
        self.caller = Caller(self.parts, self.portal, self.hold, pacer)
        self.parts.store.register(self.portal, portal_label(self.url))

    def hold(self) -> bool:
        """Take or renew this process's lease on the portal (Redis away: not held)."""
        try:
            held = self.parts.store.hold(self.portal, self.holder, self.parts.settings.sync_lease)
        except redis.RedisError:
            held = False
        if not held:
            self.started = False
        return held

    def release(self) -> None:
        self.parts.store.release(self.portal, self.holder)

    def run_until(self, stop: threading.Event, drain: bool = False) -> None:
        """Pull and acknowledge until ``stop`` is set (``drain``: until nothing is
        pending and every claim pulled is acknowledged)."""
        settings = self.parts.settings
        try:
            while not stop.is_set():
                if not self.hold():
                    stop.wait(settings.sync_lease / 3)  # standing by
                    continue
                pulled, caught_up = self.step()
                if drain and caught_up and self.all_acked():
                    return
                if caught_up:
                    stop.wait(settings.sync_poll)
                elif not pulled:
                    stop.wait(ROOM_POLL)  # no room in the fleet: look again soon
        finally:
            with contextlib.suppress(redis.RedisError):
                self.release()

    def step(self) -> tuple[int, bool]:
        """One pull and one acknowledgement: (claims pulled, the portal had no more).
        Redis or the database away, or the lease lost: said, and (0, False); the
        next step reads the state again."""
        try:
            return self._step()
        except (InfrastructureError, redis.RedisError) as exc:
            self.started = False
            self.parts.say(f"sync paused: {exc}")
            time.sleep(min(2.0, self.parts.settings.sync_poll))
            return 0, False

    def _step(self) -> tuple[int, bool]:
        if not self.started:
            self.resume()
        pulled, caught_up = self.pull()
        self.acknowledge()
        self.recover_stalled()
        return pulled, caught_up

    def all_acked(self) -> bool:
        return not self.parts.db.portal_unacked(self.portal, 1)

    # -- where this portal stands --------------------------------------------

    def resume(self) -> None:
        """Read where the portal stands (last claim taken); put lost claims back."""
        last = self.parts.db.portal_last(self.portal)
        self.after, self.pos = (str(last["cursor"]), int(last["pos"])) if last else (None, 0)
        self.run = None
        self.started = True
        self.parts.store.mark_once(self.portal, "first_pull_at", time.time())
        self.recover(self.lost())
        self.resend_last()

    def today(self) -> PortalRun:
        """Today's run, opened (and the earlier days' runs closed) when the day turns."""
        day = utc_day()
        if self.run is not None and self.run.day == day:
            return self.run
        parts = self.parts
        key = PORTAL_RUN_KEY.format(portal=self.portal, day=day)
        for row in parts.db.portal_open_runs(self.portal):
            if row["input_hash"] != key:
                total = parts.db.portal_next_seq(str(row["run_id"]))
                close_source_run(parts.runs, parts.db, str(row["run_id"]), total)
                parts.say(f"run {row['run_id']} of {row['inputs']}: closed at {total} claims")
        plan = open_source_run(parts.runs, parts.db, parts.crosswalks, parts.settings, key,
                               f"portal {portal_label(self.url)} {day}",
                               parts.settings.sync_page)  # fmt: skip
        next_seq = parts.db.portal_next_seq(plan.run_id)
        self.run = PortalRun(plan.run_id, day, next_seq, parts.ingest(plan.run_id))
        parts.say(f"portal claims of {day} go into run {plan.run_id} (from claim {next_seq})")
        return self.run

    # -- pulling ---------------------------------------------------------------

    def pull(self) -> tuple[int, bool]:
        """Pull a page while the run has room: (claims pulled, nothing more pending)."""
        run, settings = self.today(), self.parts.settings
        room = settings.max_inflight - self.parts.runs.in_flight(run.run_id)
        if room <= 0:
            return 0, False  # backpressure: the fleet holds its window already
        limit = min(settings.sync_page, room)
        page = self._page(self.after, limit)
        now = time.time()
        self.parts.store.mark(self.portal, last_pull_at=now)
        if len(page.claims) < limit:
            self.parts.store.mark(self.portal, caught_up_at=now)
        if page.claims:
            self.take(run, page)
        return len(page.claims), len(page.claims) < limit

    def take(self, run: PortalRun, page: Page) -> None:
        """Write the page's claims down, then enqueue them as one batch."""
        cursors, first, count = page_cursors(page), run.next_seq, len(page.claims)
        rows = [
            Pulled(self.pos + n + 1, cursor, ack, run.run_id, first + n, first, count)
            for n, (cursor, ack) in enumerate(cursors)
        ]
        taken = self.parts.db.portal_take(self.portal, rows, first + count)
        if len(taken) < count:
            self.started = False  # another sync wrote here: read the state again
            raise InfrastructureError("another sync process took claims of this portal")
        run.next_seq += count
        self.after, self.pos = cursors[-1][0] if page.cursor is None else page.cursor, rows[-1].pos
        self.enqueue(run.run_id, run.ingest, rows, page.claims)
        self.parts.store.counts(self.portal, {"pulled": count, "pages": 1})

    # -- acknowledging -----------------------------------------------------------

    def acknowledge(self) -> int:
        """Acknowledge through the last recorded claim, in order; claims acknowledged."""
        point = ack_point(self.parts.db.portal_unacked(self.portal))
        if point is None:
            return 0
        pos, cursor = point
        self.caller.call(lambda token, ttl: self.parts.portal.ack(cursor, token, ttl),
                         lambda limit: limit)  # fmt: skip
        acked = self.parts.db.portal_acked(self.portal, pos)
        self.parts.store.counts(self.portal, {"acked": acked, "acks": 1})
        return acked


def _ingested(ingest: Ingest, row: Pulled, claim: dict[str, Any]) -> tuple[WorkRecord, str | None]:
    """A portal claim through the producer's ingestion (result source ``portal:<cursor>``)."""
    work, sealed = ingest(Record("portal", row.pos, fields=claim), row.seq, "jsonl")
    work.cursor = row.cursor
    return work, sealed


def check_portal(settings: Settings) -> str:
    """The portal URL, or the ConfigError that says it is missing."""
    if not settings.portal_url:
        raise ConfigError("RXFLEET_PORTAL_URL is not set: no payer portal to sync")
    return settings.portal_url
