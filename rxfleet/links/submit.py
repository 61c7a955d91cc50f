"""submit: a batch's open claims to the gateway, a window of requests in flight at a time.

Throughput is in-flight ÷ latency: a round sends the open claims in windows of
``RXFLEET_SUBMIT_INFLIGHT`` concurrent requests (a process-wide thread pool
over one pooled ``requests.Session``). Redis is read once per window (the
fleet pause and both breakers, the abort flag, the claims' send leases, their
vault blobs, the route memos) and written once per window (the ledger, the
audit trail and the batch's heartbeat).

Every promise holds inside the window:

* each claim keeps its ``Idempotency-Key`` (its claim id) on every try;
* a claim is leased before it is sent: a second delivery of the batch (an early
  redelivery, a re-driven chain) cannot send it while the lease holds;
* a 401 invalidates exactly the token used, the fleet rotates once
  (single-flight) and only the refused claims are replayed with the new one;
* a 404 rejects ``04`` and the BIN/PCN is remembered at once; an unknown
  BIN/PCN is found out by one request at a time across the fleet;
* the first 429/503 with Retry-After stops new sends (the requests in flight
  finish and are recorded), then the whole fleet pauses until Retry-After;
* every answer feeds the breakers (gateway health and authentication).

The whole retry policy of the link is here: a claim whose own tries are spent
is rejected 99 and the batch goes on; a window in which every request failed
ends the round with backoff (exponential, full jitter), and when rounds without
progress run out (the gateway is down) the open claims are rejected 99. Waits
longer than ``RXFLEET_COUNTDOWN_MAX`` are taken in hops, so the broker's
visibility timeout can stay short.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from config import Settings
from rxfleet.claims.model import gateway_body
from rxfleet.claims.phi import VaultCipher
from rxfleet.claims.rejects import Reason, RejectMatrix, Route, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.errors import (
    AuthenticationFailed,
    ConfigError,
    FatalError,
    GatewayUnavailable,
    RateLimited,
    RetryableError,
    RoutingMiss,
    RxFleetError,
)
from rxfleet.gateway.aio import Job
from rxfleet.gateway.client import Adjudication
from rxfleet.links import LinkReport, open_records
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.metrics import MetricsStore, RequestTally
from rxfleet.stores.pause import FleetPause
from rxfleet.stores.routes import RouteMemo, RouteState
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import Token, TokenStore

log = logging.getLogger("rxfleet.submit")

ROUTING_REJECT = "04"  # M/I Processor Control Number: the gateway has no such route
HOST_ERROR_REJECT = "99"  # Host Processing Error: the fleet gave up, or the request was refused
MAX_REPLAYS = 2  # 401 replays of one claim within a round
ROUTE_PROBE_WAIT = 0.2  # a batch waiting for another's route probe holds back this long
LEASE_HELD_WAIT = 1.0  # a batch whose claims another holder is sending comes back after this
LEASE_GRANTED, LEASE_GONE = 1, 2


class LocalPause:
    """What this process already knows of the fleet pause, checked before every request.

    The fleet pause lives in Redis and is read once per window; a 429/503 one
    thread of this process just got is known here at once, so no other thread
    of the process starts a request after it (other processes learn it at
    their next window: their requests in flight were admitted before it).
    """

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def note(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, time.time() + seconds)

    def remaining(self) -> float:
        return max(0.0, self._until - time.time())


class Adjudicated(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def reject_codes(self) -> Sequence[str]: ...


class Sender(Protocol):
    """Sends a window's claims concurrently (the aiohttp sender; None: one at a time)."""

    def send(
        self,
        jobs: Sequence[Job],
        go: Callable[[], bool],
        seen: Callable[[Adjudication | RxFleetError], None],
    ) -> Sequence[tuple[Adjudicated | RxFleetError, float] | None]: ...


class Gateway(Protocol):
    """The gateway client's surface the submit link uses."""

    def fetch_token(self) -> Any: ...

    def submit(
        self, body: Mapping[str, Any], *, token: str, session_ttl: int, idempotency_key: str
    ) -> Adjudicated: ...


@dataclass
class SubmitContext:
    runs: RunStore
    tokens: TokenStore
    pause: FleetPause
    routes: RouteMemo
    gateway: Gateway
    vault: VaultCipher
    settings: Settings
    health: Breaker | None = None
    auth: Breaker | None = None
    sender: Sender | None = None  # None: one request at a time (unit tests)
    local_pause: LocalPause = field(default_factory=lambda: LocalPause())  # one per process
    rejects: RejectMatrix | None = None  # which reject codes are transient (90-98)
    owner: str = "local"  # whose leases these are (the task id)
    metrics: MetricsStore | None = None  # None: no fleet counters (unit tests)


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


def submit_batch(
    ctx: SubmitContext, run_id: str, batch: range, *, failures: int = 0
) -> SubmitReport:
    """Send the batch's open claims; ``report.retry`` says when to come back for the rest.

    ``failures`` counts rounds that failed without progress. A deferral (fleet
    pause, open breaker, a route being found out, claims leased elsewhere, the
    round's time budget) is not a failure, and a round with progress starts the
    count again.
    """
    report = SubmitReport(run_id, "submit")
    todo = open_records(ctx.runs, run_id, batch, Stage.MAPPED, report)
    final = failures >= ctx.settings.submit_max_retries
    round_ = _Round(ctx, run_id, batch, report, failures, final)
    round_.run(todo)
    if report.retry_in is not None:
        streak = failures if report.deferred else (1 if report.done else failures + 1)
        report.retry = Retry(min(report.retry_in, ctx.settings.countdown_max), streak)
    if ctx.metrics is not None:
        retried = (report.reason or "retry") if report.retry is not None else None
        ctx.metrics.add_round(round_.requests, retried)
    return report


@dataclass
class _Plan:
    """What one window's Redis read said."""

    wait: float = 0.0
    why: str = ""
    probes: dict[str, bool] = field(default_factory=dict)  # breaker name → this caller probes
    aborted: bool = False
    send: list[WorkRecord] = field(default_factory=list)
    send_local: list[WorkRecord] = field(default_factory=list)  # ended here (a known 404)
    busy: list[WorkRecord] = field(default_factory=list)  # leased elsewhere, or route probing
    route_busy: bool = False
    probed: set[tuple[str, str]] = field(default_factory=set)


@dataclass
class _Outcome:
    record: WorkRecord
    token: Token
    gate_at: float
    answer: Adjudicated | None = None
    error: RxFleetError | None = None
    skipped: bool = False  # the window was stopped before this one went out
    seconds: float = 0.0  # how long the request took


class _Round:
    """One delivery of the submit task: windows until done, stopped or out of time."""

    def __init__(
        self,
        ctx: SubmitContext,
        run_id: str,
        batch: range,
        report: SubmitReport,
        failures: int,
        final: bool,
    ) -> None:
        self.ctx, self.run_id, self.batch, self.report = ctx, run_id, batch, report
        self.failures, self.final = failures, final
        self.deadline = time.monotonic() + ctx.settings.submit_round_seconds
        self.stop = threading.Event()
        self.retry_after: float | None = None
        self.probes: dict[str, bool] = {}  # breaker name → this round holds its half-open probe
        self.owner = f"{ctx.owner}:{uuid.uuid4().hex[:8]}"  # this delivery's leases

        self.sealed: dict[int, str | None] = {}
        self.known: set[tuple[str, str]] = set()  # routes already remembered as good
        self.later: list[WorkRecord] = []  # failed this round: back next round, after backoff
        self.gate_at = 0.0  # when this window's gate (pause, breakers) was read from Redis
        self.requests = RequestTally()  # latencies and outcomes, written once at the end

    # -- the loop -----------------------------------------------------------

    def run(self, todo: list[WorkRecord]) -> None:
        pending = deque(todo)
        try:
            while pending and self.report.retry_in is None:
                self._window(pending)
        finally:
            self._release_probes()
        if self.later and self.report.retry_in is None:
            delay = backoff(self.ctx.settings, 1 if self.report.done else self.failures)
            self._defer(delay, "claims to try again", deferred=False)
        self.report.still_open = len(pending) + len(self.later)

    def _window(self, pending: deque[WorkRecord]) -> None:
        if time.monotonic() > self.deadline:
            self._defer(0.0, "round time budget", deferred=True)
            return
        size = 1 if any(self.probes.values()) else self.ctx.settings.submit_inflight
        window = [pending.popleft() for _ in range(min(size, len(pending)))]
        plan = self._plan(window)
        if plan.aborted:
            self._abort([*window, *pending, *self.later], pending)
            return
        if plan.wait > 0:
            self._unlease(window)
            pending.extendleft(reversed(window))
            self._defer(plan.wait, plan.why, deferred=True)
            return
        self._send_window(plan, pending)

    def _unlease(self, records: Iterable[WorkRecord]) -> None:
        self.ctx.runs.release(self.run_id, [r.seq for r in records], self.owner)

    def _send_window(self, plan: _Plan, pending: deque[WorkRecord]) -> None:
        sent = list(plan.send)
        try:
            retry = self._settle(self._post_all(plan.send)) if sent else []
        except RetryableError:  # no token to be had: the whole window waits
            retry = sent
        finally:
            for route in plan.probed:
                self.ctx.routes.release(*route)
        ended = [*sent, *plan.send_local]
        self.ctx.runs.save(self.run_id, ended, self.batch)
        self.report.done += sum(1 for r in ended if r.stage == Stage.SENT)
        self._after_window(plan, sent, retry, pending)

    def _after_window(
        self,
        plan: _Plan,
        sent: list[WorkRecord],
        retry: list[WorkRecord],
        pending: deque[WorkRecord],
    ) -> None:
        self._unlease([*retry, *plan.busy])
        pending.extend(plan.busy)
        if self.retry_after is not None:
            pending.extendleft(reversed(retry))
            self.ctx.pause.lengthen(self.retry_after)
            self._defer(self.retry_after, "gateway asked to wait (Retry-After)", deferred=True)
            return
        progress = any(r.stage == Stage.SENT for r in sent)
        if retry and not progress:
            self._failed_window(retry, pending)
            return
        self.later.extend(retry)
        if plan.busy and not plan.send and not retry:
            wait = ROUTE_PROBE_WAIT if plan.route_busy else LEASE_HELD_WAIT
            self._defer(wait, "claims held elsewhere", deferred=True)

    def _failed_window(self, retry: list[WorkRecord], pending: deque[WorkRecord]) -> None:
        """Every request of the window failed: the gateway is not well; stop the round."""
        if self.final:
            self._give_up([*retry, *pending, *self.later], pending)
            return
        pending.extendleft(reversed(retry))
        delay = backoff(self.ctx.settings, self.failures)
        self._defer(delay, "every request of a window failed", deferred=False)

    def _defer(self, delay: float, reason: str, *, deferred: bool) -> None:
        self.report.retry_in = delay
        self.report.reason = reason
        self.report.deferred = deferred

    # -- one window's Redis read --------------------------------------------

    def _plan(self, window: list[WorkRecord]) -> _Plan:
        ctx, plan = self.ctx, _Plan()
        routes = sorted({_route(r) for r in window})
        pipe = ctx.runs.pipeline()
        self.gate_at = time.time()  # before the read: a lower bound of what it saw
        ctx.pause.read(pipe)
        breakers = self._breakers()
        for breaker in breakers:
            breaker.read(pipe)
        ctx.runs.aborted_flag(pipe, self.run_id)
        ctx.runs.lease(pipe, self.run_id, [r.seq for r in window], self.owner, self._lease_ms())
        ctx.runs.read_sealed(pipe, self.run_id, [r.seq for r in window])
        for route in routes:
            ctx.routes.read(pipe, *route)
        replies = pipe.execute()
        self._read_gate(plan, replies[: 1 + 2 * len(breakers)], breakers)
        aborted, granted, sealed, *memo = replies[1 + 2 * len(breakers) :]
        plan.aborted = bool(aborted)
        states = {r: ctx.routes.state_of(*memo[2 * i : 2 * i + 2]) for i, r in enumerate(routes)}
        blobs = ctx.runs.sealed_of(sealed)
        self.sealed.update({r.seq: blob for r, blob in zip(window, blobs, strict=True)})
        self.known.update(route for route, state in states.items() if state is RouteState.KNOWN)
        self._choose(plan, window, [int(g) for g in granted], states)
        return plan

    def _breakers(self) -> list[Breaker]:
        return [
            b
            for b in (self.ctx.health, self.ctx.auth)
            if b is not None and not self.probes.get(b.name)
        ]

    def _read_gate(self, plan: _Plan, replies: list[Any], breakers: list[Breaker]) -> None:
        paused = max(self.ctx.pause.remaining_of(replies[0]), self.ctx.local_pause.remaining())
        if paused > 0:
            self.ctx.local_pause.note(paused)
            plan.wait, plan.why = paused, "fleet pause"
            return
        for i, breaker in enumerate(breakers):
            wait, probe = breaker.decide(*replies[1 + 2 * i : 3 + 2 * i])
            if probe:
                self.probes[breaker.name] = True
            if wait > 0:
                plan.wait, plan.why = wait, f"{breaker.name} breaker open"
                return

    def _choose(
        self,
        plan: _Plan,
        window: list[WorkRecord],
        granted: list[int],
        states: dict[tuple[str, str], RouteState | None],
    ) -> None:
        for record, lease in zip(window, granted, strict=True):
            route = _route(record)
            if lease == LEASE_GONE:
                continue  # recorded meanwhile by another delivery: nothing to do
            if lease != LEASE_GRANTED:
                plan.busy.append(record)
                continue
            state = self._route_state(route, plan, states)
            if state is RouteState.MISS:
                reject(record, ROUTING_REJECT, Reason.ROUTING_MISS)
                plan.send_local.append(record)
            elif state in (RouteState.KNOWN, RouteState.PROBE):
                plan.send.append(record)
            else:
                plan.busy.append(record)
                plan.route_busy = True

    def _route_state(
        self,
        route: tuple[str, str],
        plan: _Plan,
        states: dict[tuple[str, str], RouteState | None],
    ) -> RouteState | None:
        """KNOWN, MISS, PROBE (this record finds the route out), or None (another does)."""
        state = states[route]
        if state is not None or route in plan.probed:
            return state
        state = self.ctx.routes.probe(*route, patience=0.0)
        if state is RouteState.PROBE:
            plan.probed.add(route)
            return state
        states[route] = None if state is RouteState.BUSY else state
        return states[route]

    def _lease_ms(self) -> int:
        settings = self.ctx.settings
        return int((settings.connect_timeout + settings.read_timeout) * 1000 * (MAX_REPLAYS + 2))

    # -- sending --------------------------------------------------------------

    def _post_all(self, records: Sequence[WorkRecord]) -> list[_Outcome]:
        token = _token(self.ctx, lambda: self.ctx.tokens.ensure(self.ctx.gateway))
        return self._dispatch([(r, self._body(r)) for r in records], token)

    def _dispatch(
        self, bodies: Sequence[tuple[WorkRecord, dict[str, Any]]], token: Token
    ) -> list[_Outcome]:
        gate_at = self.gate_at
        if self.ctx.sender is None or len(bodies) < 2:
            return [self._post(r, b, token, gate_at) for r, b in bodies]
        ttl = max(0, int(token.ttl()))
        jobs = [Job(b, token.value, ttl, str(r.claim_id)) for r, b in bodies]
        results = self.ctx.sender.send(jobs, self._may_send, self._heard)
        return [
            self._outcome(r, token, gate_at, result)
            for (r, _), result in zip(bodies, results, strict=True)
        ]

    def _may_send(self) -> bool:
        """Right before each request: not stopped by this round, not paused in this process."""
        return not self.stop.is_set() and self.ctx.local_pause.remaining() <= 0

    def _heard(self, result: Adjudicated | RxFleetError) -> None:
        """Each answer as it comes: the first 429/503 with Retry-After stops new sends."""
        if isinstance(result, RateLimited | GatewayUnavailable) and result.retry_after is not None:
            self.stop.set()
            self.ctx.local_pause.note(result.retry_after)

    @staticmethod
    def _outcome(
        record: WorkRecord,
        token: Token,
        gate_at: float,
        timed: tuple[Adjudicated | RxFleetError, float] | None,
    ) -> _Outcome:
        if timed is None:
            return _Outcome(record, token, gate_at, skipped=True)
        result, seconds = timed
        if isinstance(result, RxFleetError):
            return _Outcome(record, token, gate_at, error=result, seconds=seconds)
        return _Outcome(record, token, gate_at, answer=result, seconds=seconds)

    def _post(
        self, record: WorkRecord, body: dict[str, Any], token: Token, gate_at: float
    ) -> _Outcome:
        """One request (in a pool thread): nothing but the HTTP call and its outcome."""
        if not self._may_send():
            return _Outcome(record, token, gate_at, skipped=True)
        started = time.perf_counter()
        try:
            answer = self.ctx.gateway.submit(
                body,
                token=token.value,
                session_ttl=max(0, int(token.ttl())),
                idempotency_key=str(record.claim_id),
            )
        except RxFleetError as exc:
            self._heard(exc)  # the first 429/503: no new sends from this round or process
            seconds = time.perf_counter() - started
            return _Outcome(record, token, gate_at, error=exc, seconds=seconds)
        seconds = time.perf_counter() - started
        return _Outcome(record, token, gate_at, answer=answer, seconds=seconds)

    def _body(self, record: WorkRecord) -> dict[str, Any]:
        """The HTTP body: the claim's fields and, for this one hop, its PHI from the vault."""
        body = gateway_body(record.claim or {})
        sealed = self.sealed.get(record.seq)
        if sealed is not None:
            phi = self.ctx.vault.open(sealed, context=f"{self.run_id}:{record.seq}")
            body.update({name: value for name, value in phi.items() if value is not None})
        body["gpi"] = record.gpi
        return body

    # -- outcomes -------------------------------------------------------------

    def _settle(self, outcomes: list[_Outcome]) -> list[WorkRecord]:
        """Apply every outcome; replay 401s once the fleet rotated; the claims to retry."""
        retry: list[WorkRecord] = []
        for replay in range(MAX_REPLAYS + 1):
            refused = [o for o in outcomes if self._apply(o, retry, last=replay == MAX_REPLAYS)]
            if not refused:
                break
            token = _token(self.ctx, lambda: self.ctx.tokens.rotate(self.ctx.gateway))
            self.gate_at = time.time()
            paused = max(self.ctx.pause.remaining(), self.ctx.local_pause.remaining())
            if paused > 0:  # the fleet was told to wait meanwhile: the replays wait too
                self.ctx.local_pause.note(paused)
            bodies = [(o.record, self._body(o.record)) for o in refused]
            outcomes = self._dispatch(bodies, token)
        return retry

    def _apply(self, outcome: _Outcome, retry: list[WorkRecord], *, last: bool) -> bool:
        """Record one outcome on its claim; True when it is a 401 to replay."""
        record = outcome.record
        if outcome.skipped:
            retry.append(record)
            waited = self.ctx.local_pause.remaining()
            if waited > 0:
                self.retry_after = max(self.retry_after or 0.0, waited)
            return False
        record.attempts += 1
        self.report.network_calls += 1
        what = outcome.answer.status if outcome.answer is not None else type(outcome.error).__name__
        self.requests.observe(outcome.seconds, what)
        if outcome.answer is not None:
            self._answered(record, outcome)
            if self._transient(record):
                self._count_failure(record, retry, Reason.TRANSIENT_EXHAUSTED)
            return False
        error = outcome.error
        assert error is not None
        record.trail("attempt", attempt=record.attempts, gate_at=outcome.gate_at,
                     outcome=type(error).__name__)  # fmt: skip
        return self._failed(record, outcome, error, retry, last=last)

    def _answered(self, record: WorkRecord, outcome: _Outcome) -> None:
        answer = outcome.answer
        assert answer is not None
        record.trail("attempt", attempt=record.attempts, gate_at=outcome.gate_at,
                     outcome=answer.status)  # fmt: skip
        self._observe(ok=True)
        self._learn(record, ok=True)
        record.response_status = answer.status
        record.reject_codes = list(answer.reject_codes)
        sent(record)

    def _failed(
        self,
        record: WorkRecord,
        outcome: _Outcome,
        error: RxFleetError,
        retry: list[WorkRecord],
        *,
        last: bool,
    ) -> bool:
        if isinstance(error, AuthenticationFailed):
            self.ctx.tokens.invalidate(outcome.token.value, error.reason)
            if not last:
                return True
            self._observe(ok=False, breaker="auth")  # a fresh token did not cure it
        elif isinstance(error, RoutingMiss):
            self._observe(ok=True)
            self._learn(record, ok=False)
            reject(record, ROUTING_REJECT, Reason.ROUTING_MISS)
            return False
        elif isinstance(error, FatalError):  # the gateway refused the request itself
            self._observe(ok=True)
            reject(record, HOST_ERROR_REJECT, Reason.GATEWAY_REFUSED)
            return False
        elif isinstance(error, RetryableError):
            self._retryable(error)
        self._count_failure(record, retry)
        return False

    def _retryable(self, error: RetryableError) -> None:
        if error.retry_after is not None and isinstance(error, RateLimited | GatewayUnavailable):
            wait = min(error.retry_after, self.ctx.settings.retry_after_cap)
            self.retry_after = max(self.retry_after or 0.0, wait + random.uniform(0.0, 0.25))
            return  # the gateway asking for a pause is healthy
        self._observe(ok=False)

    def _transient(self, record: WorkRecord) -> bool:
        """A host or system reject (90-98): the same claim may pass later, unchanged."""
        rejects = self.ctx.rejects
        return rejects is not None and rejects.transient(record.reject_codes)

    def _count_failure(
        self, record: WorkRecord, retry: list[WorkRecord], spent: Reason = Reason.RETRIES_EXHAUSTED
    ) -> None:
        record.failures += 1
        if record.failures > self.ctx.settings.submit_max_retries:
            if spent is Reason.TRANSIENT_EXHAUSTED:  # the payer's own transient codes stand
                record.reason = spent
            else:
                reject(record, HOST_ERROR_REJECT, spent)  # its tries are spent
            return
        record.stage = Stage.MAPPED  # open again: sent again next round, same key
        retry.append(record)

    def _learn(self, record: WorkRecord, *, ok: bool) -> None:
        """Remember a route the gateway answered for (once) or said it has not (404)."""
        route = _route(record)
        if not ok:
            self.ctx.routes.remember_miss(*route)
            self.known.discard(route)
        elif route not in self.known:
            self.ctx.routes.remember_ok(*route)
            self.known.add(route)

    def _observe(self, *, ok: bool, breaker: str = "health") -> None:
        """Feed the breakers: a healthy answer to both, a failure to its own."""
        for b in (self.ctx.health, self.ctx.auth):
            if b is not None and (ok or b.name == breaker):
                b.record(ok, probe=self.probes.pop(b.name, False))

    def _release_probes(self) -> None:
        for b in (self.ctx.health, self.ctx.auth):
            if b is not None:
                b.flush()
                if self.probes.pop(b.name, False):  # a probe that never got its answer
                    b.release_probe()

    # -- ends ---------------------------------------------------------------

    def _give_up(self, records: Iterable[WorkRecord], pending: deque[WorkRecord]) -> None:
        given = list(records)
        pending.clear()
        self.later.clear()
        for record in given:
            reject(record, HOST_ERROR_REJECT, Reason.RETRIES_EXHAUSTED)
        self.ctx.runs.save(self.run_id, given, self.batch)
        self.report.done += len(given)
        self.report.reason = "retries exhausted"

    def _abort(self, records: Iterable[WorkRecord], pending: deque[WorkRecord]) -> None:
        aborted = list(records)
        pending.clear()
        self.later.clear()
        for record in aborted:
            end_aborted(record)
        self.ctx.runs.save(self.run_id, aborted, self.batch)
        self.report.done += len(aborted)
        self.report.reason = "run aborted"


def _route(record: WorkRecord) -> tuple[str, str]:
    """The claim's BIN/PCN (an NCPDP claim may have no PCN)."""
    claim = record.claim or {}
    return str(claim["bin"]), str(claim.get("pcn") or "")


def sent(record: WorkRecord) -> None:
    record.stage = Stage.SENT
    record.trail("sent", outcome=record.response_status, codes=list(record.reject_codes),
                 attempt=record.attempts)  # fmt: skip


def reject(record: WorkRecord, code: str, reason: str | None = None) -> None:
    """End the claim as rejected with ``code`` (a payer-style answer the fleet gives itself)."""
    record.response_status = "R"
    record.reject_codes = [code]
    record.reason = reason
    sent(record)


def end_aborted(record: WorkRecord) -> None:
    """An open claim of an aborted run: never sent, rejected 99 for the reason ``aborted``."""
    reject(record, HOST_ERROR_REJECT, Reason.ABORTED)
    record.status, record.route, record.stage = Status.REJECTED, Route.HOST_ERROR, Stage.ROUTED


def _token(ctx: SubmitContext, get: Callable[[], Token]) -> Token:
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


def retry_delay(settings: Settings, exc: RetryableError, failures: int) -> float:
    """Not before Retry-After (capped); else exponential backoff with full jitter."""
    if exc.retry_after is not None:
        return min(exc.retry_after, settings.retry_after_cap) + random.uniform(0.0, 0.25)
    return backoff(settings, failures)
