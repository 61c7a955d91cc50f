"""``rxfleet webhooks``: the payer's formulary events, received, kept, applied, published.

``POST /v1/formulary`` (docs/operations.md, "Formulary webhooks"):

1. the body is read up to ``RXFLEET_WEBHOOK_MAX_BODY`` (larger: 413);
2. ``X-PBM-Signature`` is checked (``rxfleet.gateway.signing``: HMAC-SHA-256 of
   ``"<t>.<raw body>"``, constant-time, ``t`` within 300 s): 401 otherwise;
3. the body must be an event (``rxfleet.claims.formulary``): 400 otherwise;
4. the event is handed to the one writer thread, which stores every event that came
   in meanwhile in one PostgreSQL transaction (group commit) and, in that same
   transaction, applies each stored event that is next in sequence; then it
   publishes the new version to Redis (``rxfleet.stores.formulary``);
5. only then the answer: 204 (the same ``event_id`` again: 204, applied once);
   503 when the database could not keep it (nothing was answered 204, the payer
   sends it again); 400 for a new event id with a sequence already used.

An event after a gap in the sequence is kept and waits for the missing one (the
payer resends what was not answered 204). Claims whose NDC is unknown meanwhile are
TRANSIENT (the crosswalk link re-checks them). After ``RXFLEET_FORMULARY_GAP_SECONDS``
the gap is flagged: an ERROR line each minute and the gauge
``rxfleet_formulary_waiting_seconds`` (alert ``RxfleetFormularyGap``); the events
behind it still wait, never applied out of order.

Once a second (and at start) the process compares Redis's version with the
database's and republishes what Redis lacks (a Redis restarted empty, a publish
that failed): the database is the formulary's record, Redis its published copy.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
from aiohttp import web

from rxfleet.claims.formulary import EventRefused, FormularyEvent, parse_event
from rxfleet.errors import InfrastructureError
from rxfleet.gateway.signing import HEADER, SignatureRefused, verify
from rxfleet.stores.database import Database
from rxfleet.stores.formulary import FormularyCache
from rxfleet.stores.formulary_db import Outcome
from rxfleet.stores.metrics import MetricsStore

log = logging.getLogger(__name__)
PATH = "/v1/formulary"
#: Most events one transaction stores (the writer takes what waits, up to this).
GROUP_MAX = 500
FLAG_EVERY = 60.0


@dataclass
class Publisher:
    """The database's formulary, published to Redis; counts kept until the next write."""

    db: Database
    cache: FormularyCache
    metrics: MetricsStore
    gap_seconds: float
    counts: Counter[str] = field(default_factory=Counter)
    _flagged_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, outcome: str, n: int = 1) -> None:
        """Count a request's answer (any thread); written with the next commit or tick."""
        with self._lock:
            self.counts[outcome] += n

    def commit(self, events: list[FormularyEvent]) -> Outcome:
        """Store and apply ``events`` (one transaction), then publish; the writer thread."""
        out = self.db.store_and_apply(events)
        for outcome, ids in (("stored", out.stored), ("duplicate", out.duplicates),
                             ("clash", out.clashes)):  # fmt: skip
            self.count(outcome, len(ids))
        try:
            self._publish(out)
        except redis.RedisError as exc:  # durable already: the next sync republishes
            log.error("formulary: publishing version %d to Redis failed (%s)", out.version,
                      type(exc).__name__)  # fmt: skip
        return out

    def _publish(self, out: Outcome) -> None:
        if out.applied:
            first = out.applied[0].sequence - 1
            changes = [(a.sequence, e) for a in out.applied for e in a.entries]
            held = self.cache.publish(first, out.version, changes)
            if held is not None:
                self.sync(held)
            lags = [max(0.0, (a.applied_at - a.published_at).total_seconds()) for a in out.applied]
            self.metrics.observe("webhook_lag", lags, self._drain())
        self._mark_waiting(out.waiting)

    def _mark_waiting(self, waiting: int) -> None:
        if not waiting:
            self.cache.set_waiting(None)
            return
        _, oldest = self.db.formulary_waiting()
        self.cache.set_waiting(oldest.timestamp() if oldest else time.time())

    def _drain(self) -> dict[str, int]:
        with self._lock:
            counts, self.counts = self.counts, Counter()
        return {f"webhook|{name}": n for name, n in counts.items()}

    def sync(self, held: int | None = None) -> int:
        """Republish what Redis lacks; the version Redis holds after."""
        after = self.cache.version() if held is None else held
        version = self.db.formulary_version()
        while after < version:
            version, changes = self.db.formulary_entries(after)
            again = self.cache.publish(after, version, changes)
            after = version if again is None else again
        return after

    def tick(self) -> None:
        """Once a second: republish what Redis lacks, flag a gap, write the counts."""
        self.sync()
        waiting, oldest = self.db.formulary_waiting()
        self._mark_waiting(waiting)
        self.metrics.observe("webhook_lag", [], self._drain())
        age = time.time() - oldest.timestamp() if oldest else 0.0
        if waiting and age > self.gap_seconds and time.time() - self._flagged_at > FLAG_EVERY:
            self._flagged_at = time.time()
            log.error("formulary: %d events wait behind a gap in the sequence for %.0f s "
                      "(version %d): the payer has not sent the next one", waiting, age,
                      self.db.formulary_version())  # fmt: skip


@dataclass
class _Pending:
    event: FormularyEvent
    answer: asyncio.Future[int]


class Receiver:
    """The aiohttp side: checks each request, queues the event, answers once it is kept."""

    def __init__(self, publisher: Publisher, secret: bytes, clock: Callable[[], float]) -> None:
        self.publisher = publisher
        self.secret = secret
        self.clock = clock
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="formulary-writer")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            self.publisher.count("oversize")
            raise
        try:
            verify(self.secret, request.headers.get(HEADER), body, self.clock())
            event = parse_event(body)
        except SignatureRefused as refused:
            self.publisher.count(refused.reason)
            return _error(401, "invalid_signature", refused.reason)
        except EventRefused as refused:
            self.publisher.count("not_event")
            return _error(400, "invalid_event", str(refused))
        answer: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self.queue.put(_Pending(event, answer))
        status = await answer
        if status == 400:
            return _error(400, "sequence_used", "another event has this sequence")
        return web.Response(status=status)

    async def write_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < GROUP_MAX:
                batch.append(self.queue.get_nowait())
            events = [p.event for p in batch]
            try:
                out = await loop.run_in_executor(self.executor, self.publisher.commit, events)
            except InfrastructureError as exc:
                log.error("formulary: %d events not kept: %s", len(batch), exc)
                self.publisher.count("unavailable", len(batch))
                _answer(batch, lambda _: 503)
                continue
            clashes = out.clashes
            _answer(batch, lambda p: 400 if p.event.event_id in clashes else 204)  # noqa: B023

    async def tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await loop.run_in_executor(self.executor, self.publisher.tick)
            except (InfrastructureError, redis.RedisError) as exc:
                log.error("formulary: sync failed (%s)", type(exc).__name__)
            await asyncio.sleep(1.0)

    async def version(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/formulary/version``: the version Redis holds (readiness, operators)."""
        held = await asyncio.get_running_loop().run_in_executor(
            self.executor, self.publisher.cache.version
        )
        return web.json_response({"version": held})


def _answer(batch: list[_Pending], status: Callable[[_Pending], int]) -> None:
    for pending in batch:
        if not pending.answer.done():
            pending.answer.set_result(status(pending))


def _error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)


def application(receiver: Receiver, max_body: int) -> web.Application:
    """The aiohttp application: the route, and the writer and sync tasks while it runs."""
    app = web.Application(client_max_size=max_body)
    app.router.add_post(PATH, receiver.handle)
    app.router.add_get(PATH + "/version", receiver.version)

    async def background(app: web.Application) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(receiver.write_forever()),
                 asyncio.create_task(receiver.tick_forever())]  # fmt: skip
        yield
        for task in tasks:
            task.cancel()
        receiver.executor.shutdown(wait=True)

    app.cleanup_ctx.append(background)
    return app


def serve(receiver: Receiver, max_body: int, host: str, port: int) -> None:  # pragma: no cover
    """Serve until interrupted (``rxfleet webhooks``)."""
    web.run_app(application(receiver, max_body), host=host, port=port, print=None,
                access_log=None, handle_signals=True)  # fmt: skip


class WebhookServer:
    """``application`` on ``host:port`` in a thread of its own (tests, the embedded mode)."""

    def __init__(self, receiver: Receiver, max_body: int, host: str = "127.0.0.1",
                 port: int = 0) -> None:  # fmt: skip
        self.app = application(receiver, max_body)
        self.host, self.port = host, port
        self.loop = asyncio.new_event_loop()
        self.runner = web.AppRunner(self.app, access_log=None)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{PATH}"

    def start(self) -> WebhookServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        return self

    async def _start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def __enter__(self) -> WebhookServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
