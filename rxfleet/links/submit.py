"""submit: the claims of a batch still open, to the gateway, each exactly once.

Per claim: a remembered 404 route is rejected (04) with no network call; the PHI
is opened from the vault just for the request body; the fleet's shared token is
used, and a 401 invalidates exactly that token, rotates it once for the fleet
and replays the same request (same Idempotency-Key: not a new claim).

Per batch: the first retryable failure stops the loop. The claims already
answered stay answered (the ledger); the rest wait for the task's retry:
not before Retry-After when the gateway gave one (and then the whole fleet
pauses, not only this worker), else exponential backoff with full jitter.
A claim whose own tries are spent is rejected 99 and the batch goes on (one
poison claim does not sink its batch); when the task's rounds without progress
run out (the gateway is down), the open claims are rejected 99.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from config import Settings
from rxfleet.claims.model import Claim
from rxfleet.claims.phi import VaultCipher
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.errors import (
    AuthenticationFailed,
    ConfigError,
    FatalError,
    GatewayUnavailable,
    RateLimited,
    RetryableError,
    RoutingMiss,
)
from rxfleet.links import LinkReport, open_records, stage_event
from rxfleet.stores.breaker import Breaker
from rxfleet.stores.connection import as_text
from rxfleet.stores.runs import RunStore
from rxfleet.stores.tokens import Token, TokenStore

log = logging.getLogger("rxfleet.submit")

ROUTING_REJECT = "04"  # M/I Processor Control Number: the gateway has no such route
HOST_ERROR_REJECT = "99"  # Host Processing Error: retries exhausted or request refused
MAX_REPLAYS = 2
ROUTE_PROBE_MS = 30_000  # a probe's holder that died frees the route after this
ROUTE_PROBE_PATIENCE = 1.0  # seconds to wait in the task for another's probe to answer
ROUTE_PROBE_WAIT = 0.2  # then the batch holds back this long (a deferral, not a failure)


class Adjudicated(Protocol):
    @property
    def status(self) -> str: ...

    @property
    def reject_codes(self) -> Sequence[str]: ...


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
    gateway: Gateway
    vault: VaultCipher
    settings: Settings
    breaker: Breaker | None = None
    probe: bool = False


@dataclass
class SubmitReport(LinkReport):
    still_open: int = 0
    retry_in: float | None = None
    reason: str | None = None
    deferred: bool = False
    events: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        summary = super().as_dict()
        summary.pop("events", None)
        return summary

    network_calls: int = 0
    codes: dict[str, int] = field(default_factory=dict)


def submit_batch(
    ctx: SubmitContext, run_id: str, seqs: Sequence[int], *, failures: int, final: bool
) -> SubmitReport:
    """Send the batch's open claims; say when to come back for the rest, if any."""
    report = SubmitReport(run_id, "submit")
    todo = open_records(ctx.runs, run_id, seqs, Stage.MAPPED, report)
    try:
        return _submit_open(ctx, run_id, todo, report, failures=failures, final=final)
    finally:
        if ctx.breaker is not None:
            ctx.breaker.flush()
            if ctx.probe:  # a probe that never got its answer
                ctx.breaker.release_probe()
                ctx.probe = False


def _submit_open(
    ctx: SubmitContext,
    run_id: str,
    todo: list[WorkRecord],
    report: SubmitReport,
    *,
    failures: int,
    final: bool,
) -> SubmitReport:
    for index, record in enumerate(todo):
        try:
            _submit_one(ctx, run_id, record, report)
        except Held as held:
            report.deferred = True
            _save(ctx, run_id, record, report)
            return _defer(ctx, run_id, todo[index:], report, held.wait, held.why)
        except RetryableError as exc:
            record.failures += 1
            if record.failures > ctx.settings.submit_max_retries:
                _reject(record, HOST_ERROR_REJECT)  # this claim's tries are spent: the rest go on
            else:
                _save(ctx, run_id, record, report)  # keep the attempt count
                return _on_retryable(ctx, run_id, todo[index:], report, exc, failures, final)
        _save(ctx, run_id, record, report)
        report.done += 1
    return report


class Held(Exception):
    """The fleet is told to hold back (pause or open breaker): come back later."""

    def __init__(self, wait: float, why: str) -> None:
        super().__init__(why)
        self.wait = wait
        self.why = why


def _gate(ctx: SubmitContext) -> tuple[float, str]:
    """Seconds to hold back (fleet pause, open breaker), and why; 0 to go."""
    pipe = ctx.runs.client.pipeline(transaction=False)
    pipe.get(ctx.runs.keys.pause)
    breaker = None if ctx.breaker is None or ctx.probe else ctx.breaker  # a probe replays on
    if breaker is not None:
        breaker.read(pipe)
    until, *state = pipe.execute()  # one round trip for the pause and the breaker
    paused = _remaining(as_text(until))
    if paused > 0:
        return paused, "fleet pause"
    if breaker is None:
        return 0.0, ""
    wait, ctx.probe = breaker.decide(*state)
    return wait, "circuit breaker open"


def _observe(ctx: SubmitContext, ok: bool | None) -> None:
    """Feed the breaker: True healthy, False a failure, None neither (a pause asked for)."""
    if ctx.breaker is None or (ok is None and not ctx.probe):
        return
    ctx.breaker.record(bool(ok), probe=ctx.probe)
    ctx.probe = False


def _save(ctx: SubmitContext, run_id: str, record: WorkRecord, report: SubmitReport) -> None:
    if record.stage == Stage.SENT:
        event = stage_event(run_id, record, "sent", attempts=record.attempts)
        event["response"] = record.response_status
        event["reject_codes"] = record.reject_codes
        report.events.append(event)
    ctx.runs.save(run_id, [record], audit=report.events)  # the ledger and its trail together
    report.events.clear()


def _submit_one(ctx: SubmitContext, run_id: str, record: WorkRecord, report: SubmitReport) -> None:
    claim = Claim.model_validate_json(json.dumps(record.claim))
    keys, route = ctx.runs.keys, (claim.bin, claim.pcn or "")  # NCPDP: PCN may be absent
    pipe = ctx.runs.client.pipeline(transaction=False)
    pipe.exists(keys.route_miss(*route))
    pipe.exists(keys.route_ok(*route))
    pipe.hget(keys.vault(run_id), str(record.seq))
    missed, known, sealed = pipe.execute()  # one round trip: both route memos and the vault
    state = "known" if known else ("miss" if missed else _probe_route(ctx, route))
    if missed or state == "miss":
        _reject(record, ROUTING_REJECT)
        return
    probing = state == "probe"
    try:
        body = _body(ctx, run_id, record, claim, as_text(sealed))
        _adjudicate(ctx, record, body, report, route, learn=not known)
    finally:
        if probing:
            ctx.runs.client.delete(keys.route_probe(*route))


def _probe_route(ctx: SubmitContext, route: tuple[str, str]) -> str:
    """A BIN/PCN not yet known good or bad is found out by one request at a time.

    Without this, workers starting together would each send a claim to an
    unknown route before any of them had remembered its 404. Returns "probe"
    (this caller sends), "known" or "miss" (another caller found out meanwhile);
    a probe that takes longer than a second defers the batch instead.
    """
    keys, client = ctx.runs.keys, ctx.runs.client
    deadline = time.monotonic() + ROUTE_PROBE_PATIENCE
    while not client.set(keys.route_probe(*route), "1", nx=True, px=ROUTE_PROBE_MS):
        pipe = client.pipeline(transaction=False)
        pipe.exists(keys.route_miss(*route))
        pipe.exists(keys.route_ok(*route))
        missed, known = pipe.execute()
        if missed or known:
            return "miss" if missed else "known"
        if time.monotonic() > deadline:
            raise Held(ROUTE_PROBE_WAIT, "route being found out")
        time.sleep(0.005)
    return "probe"


def _adjudicate(
    ctx: SubmitContext,
    record: WorkRecord,
    body: dict[str, Any],
    report: SubmitReport,
    route: tuple[str, str],
    *,
    learn: bool,
) -> None:
    memo = ctx.settings.route_miss_ttl
    try:
        answer = _send(ctx, record, body, report)
    except RoutingMiss:
        ctx.runs.client.set(ctx.runs.keys.route_miss(*route), "1", ex=memo)
        _reject(record, ROUTING_REJECT)
        return
    except FatalError:  # the gateway refused the request itself: not retried as is
        _reject(record, HOST_ERROR_REJECT)
        return
    if learn:  # a route found good is remembered once, not rewritten per claim
        ctx.runs.client.set(ctx.runs.keys.route_ok(*route), "1", ex=memo)
    record.response_status = answer.status
    record.reject_codes = list(answer.reject_codes)
    record.stage = Stage.SENT


def _body(
    ctx: SubmitContext, run_id: str, record: WorkRecord, claim: Claim, sealed: str | None
) -> dict[str, Any]:
    body = claim.gateway_fields()
    if sealed is not None:
        phi = ctx.vault.open(sealed, context=f"{run_id}:{record.seq}")
        body.update({name: value for name, value in phi.items() if value is not None})
    body["gpi"] = record.gpi
    return body


def _send(
    ctx: SubmitContext, record: WorkRecord, body: dict[str, Any], report: SubmitReport
) -> Adjudicated:
    """One claim, with the fleet token; on 401: invalidate, rotate once, replay."""
    token = _token(ctx, lambda: ctx.tokens.ensure(ctx.gateway))
    for replay in range(MAX_REPLAYS + 1):
        gate_at = time.time()  # before the gate reads Redis: a lower bound of what it saw
        wait, why = _gate(ctx)  # right before the request: the in-flight window stays tiny
        if wait > 0:
            raise Held(wait, why)
        record.attempts += 1
        report.network_calls += 1
        try:
            answer = _post(ctx, record, body, token)
        except RetryableError as exc:
            report.events.append(_attempt(record, gate_at, type(exc).__name__))
            if not isinstance(exc, AuthenticationFailed):
                raise
            ctx.tokens.invalidate(token.value, exc.reason)
            if replay == MAX_REPLAYS:
                _observe(ctx, False)  # a fresh token did not cure it
                raise
            token = _token(ctx, lambda: ctx.tokens.rotate(ctx.gateway))
            continue
        except FatalError as exc:
            report.events.append(_attempt(record, gate_at, type(exc).__name__))
            raise
        report.events.append(_attempt(record, gate_at, answer.status))
        _observe(ctx, True)
        return answer
    raise AssertionError("unreachable")  # pragma: no cover


def _attempt(record: WorkRecord, gate_at: float, outcome: str) -> dict[str, Any]:
    """One HTTP attempt, for the audit trail: when it passed the gate, what came back."""
    return {
        "stage": "attempt",
        "seq": record.seq,
        "claim_id": record.claim_id,
        "attempt": record.attempts,
        "gate_at": gate_at,
        "outcome": outcome,
        "at": time.time(),
    }


def _post(
    ctx: SubmitContext, record: WorkRecord, body: dict[str, Any], token: Token
) -> Adjudicated:
    try:
        return ctx.gateway.submit(
            body,
            token=token.value,
            session_ttl=max(0, int(token.ttl())),
            idempotency_key=str(record.claim_id),
        )
    except (RoutingMiss, FatalError):
        _observe(ctx, True)  # the gateway is healthy: it answered
        raise
    except RetryableError as exc:
        if not isinstance(exc, AuthenticationFailed):
            _observe(ctx, None if exc.retry_after is not None else False)
        raise


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


def _reject(record: WorkRecord, code: str) -> None:
    record.response_status = "R"
    record.reject_codes = [code]
    record.stage = Stage.SENT


def _on_retryable(
    ctx: SubmitContext,
    run_id: str,
    still_open: list[WorkRecord],
    report: SubmitReport,
    exc: RetryableError,
    failures: int,
    final: bool,
) -> SubmitReport:
    if final:
        for record in still_open:
            _reject(record, HOST_ERROR_REJECT)
            _save(ctx, run_id, record, report)
        report.done += len(still_open)
        report.reason = f"retries exhausted: {type(exc).__name__}"
        return report
    delay = retry_delay(ctx.settings, exc, failures)
    if isinstance(exc, RateLimited | GatewayUnavailable) and exc.retry_after is not None:
        pause_fleet(ctx, delay)
    return _defer(ctx, run_id, still_open, report, delay, type(exc).__name__)


def _defer(
    ctx: SubmitContext,
    run_id: str,
    still_open: list[WorkRecord],
    report: SubmitReport,
    delay: float,
    reason: str,
) -> SubmitReport:
    report.still_open = len(still_open)
    report.retry_in = delay
    report.reason = reason
    return report


def retry_delay(settings: Settings, exc: RetryableError, failures: int) -> float:
    """Not before Retry-After (capped); else exponential backoff with full jitter."""
    if exc.retry_after is not None:
        return min(exc.retry_after, settings.retry_after_cap) + random.uniform(0.0, 0.25)
    ceiling = min(settings.backoff_cap, settings.backoff_base * 2.0**failures)
    return random.uniform(0.0, ceiling)


# Lengthen the fleet pause, never shorten it: atomic, or two workers told to wait
# at once could both read "no pause" and the shorter SET could land last.
_LENGTHEN_PAUSE = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[1])
  return 1
end
return 0
"""


def pause_fleet(ctx: SubmitContext, seconds: float) -> None:
    """Hold every worker back until ``seconds`` from now (only ever lengthened)."""
    until_ms = int((time.time() + seconds) * 1000)
    script = ctx.runs.client.register_script(_LENGTHEN_PAUSE)
    script(keys=[ctx.runs.keys.pause], args=[until_ms])
    set_at = time.time()  # after the SET: every gate check from now on sees the pause
    pipe = ctx.runs.client.pipeline()
    pipe.lpush(ctx.runs.keys.pauses, json.dumps({"set_at": set_at, "until": until_ms / 1000}))
    pipe.ltrim(ctx.runs.keys.pauses, 0, 9999)
    pipe.execute()


def pause_remaining(ctx: SubmitContext) -> float:
    """Seconds left of a fleet-wide pause, 0 when none."""
    return _remaining(as_text(ctx.runs.client.get(ctx.runs.keys.pause)))


def _remaining(until: str | None) -> float:
    return 0.0 if until is None else max(0.0, int(until) / 1000 - time.time())
