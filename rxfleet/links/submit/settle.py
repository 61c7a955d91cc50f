"""Settling a window: each request's outcome onto its claim's record.

An answer ends the claim (a transient host reject, 90-98, may be sent again);
a 401 invalidates exactly the token used and asks for a replay; a 404 rejects
``04`` and remembers the BIN/PCN; a refused request rejects ``99``; a retryable
failure counts against the claim's tries, and a 429/503 with Retry-After makes
the round wait (the gateway asking for a pause is healthy: no breaker counts it; nor
a 429 without one: the sender's in-flight limit backs off instead).
"""

from __future__ import annotations

import random

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.rejects import HOST_ERROR_REJECT, ROUTING_REJECT, Reason
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.errors import (
    AnswerMismatch,
    AuthenticationFailed,
    FatalError,
    GatewayUnavailable,
    RateLimited,
    RetryableError,
    RoutingMiss,
    RxFleetError,
)
from rxfleet.links.submit.breakers import RoundBreakers
from rxfleet.links.submit.context import Adjudicated, SubmitContext, SubmitReport, route_of
from rxfleet.links.submit.send import Outcome
from rxfleet.stores.metrics import RequestTally


def spent_reason(record: WorkRecord) -> Reason:
    """Why a claim whose tries ran out ends ``99``: the gateway answering for another
    claim, when that was its last failure; else the transport retries."""
    if record.reason is Reason.ANSWER_MISMATCH:
        return Reason.ANSWER_MISMATCH
    return Reason.RETRIES_EXHAUSTED


class Settler:
    """Applies outcomes to records, feeds the breakers and the route memo."""

    def __init__(
        self,
        ctx: SubmitContext,
        report: SubmitReport,
        breakers: RoundBreakers,
        known: set[tuple[str, str]],
    ) -> None:
        self.ctx, self.report, self.breakers, self.known = ctx, report, breakers, known
        self.retry_after: float | None = None  # the gateway asked the round to wait this long
        self.requests = RequestTally()  # latencies and outcomes, written once at the end

    def apply(self, outcome: Outcome, retry: list[WorkRecord], *, last: bool) -> bool:
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
            self._answered(record, outcome, retry)
            return False
        error = outcome.error
        assert error is not None
        record.trail(AuditStage.ATTEMPT, attempt=record.attempts, gate_at=outcome.gate_at,
                     outcome=type(error).__name__)  # fmt: skip
        return self._failed(record, outcome.token.value, error, retry, last=last)

    def _answered(self, record: WorkRecord, outcome: Outcome, retry: list[WorkRecord]) -> None:
        answer = outcome.answer
        assert answer is not None
        record.trail(AuditStage.ATTEMPT, attempt=record.attempts, gate_at=outcome.gate_at,
                     outcome=answer.status)  # fmt: skip
        self.breakers.observe(ok=True)
        self._learn(record, ok=True)
        if record.reason is Reason.ANSWER_MISMATCH:
            record.reason = None  # an earlier try's answer named another claim; this one did not
        record.response_status = answer.status
        record.reject_codes = list(answer.reject_codes)
        _money(record, answer)
        record.sent()
        if self._transient(record):
            self._count_failure(record, retry, Reason.TRANSIENT_EXHAUSTED)

    def _failed(
        self, record: WorkRecord, token: str, error: RxFleetError, retry: list[WorkRecord], *,
        last: bool,
    ) -> bool:  # fmt: skip
        if isinstance(error, AuthenticationFailed):
            self.ctx.tokens.invalidate(token, error.reason)
            if not last:
                return True
            self.breakers.observe(ok=False, breaker="auth")  # a fresh token did not cure it
        elif isinstance(error, RoutingMiss):
            self.breakers.observe(ok=True)
            self._learn(record, ok=False)
            record.reject(ROUTING_REJECT, Reason.ROUTING_MISS)
            return False
        elif isinstance(error, FatalError):  # the gateway refused the request itself
            self.breakers.observe(ok=True)
            record.reject(HOST_ERROR_REJECT, Reason.GATEWAY_REFUSED)
            return False
        elif isinstance(error, RetryableError):
            self._retryable(error)
        if isinstance(error, AnswerMismatch):
            record.reason = Reason.ANSWER_MISMATCH  # the reason if its tries run out so
        elif record.reason is Reason.ANSWER_MISMATCH:
            record.reason = None  # its last failure is another one
        self._count_failure(record, retry, spent_reason(record))
        return False

    def _retryable(self, error: RetryableError) -> None:
        if error.retry_after is not None and isinstance(error, RateLimited | GatewayUnavailable):
            wait = min(error.retry_after, self.ctx.settings.retry_after_cap)
            self.retry_after = max(self.retry_after or 0.0, wait + random.uniform(0.0, 0.25))
            return  # the gateway asking for a pause is healthy
        if isinstance(error, RateLimited):
            return  # too many at once: the in-flight limit backs off (gateway.inflight)
        self.breakers.observe(ok=False)

    def _transient(self, record: WorkRecord) -> bool:
        """A host or system reject (90-98): the same claim may pass later, unchanged."""
        rejects = self.ctx.rejects
        return rejects is not None and rejects.transient(record.reject_codes)

    def _count_failure(
        self,
        record: WorkRecord,
        retry: list[WorkRecord],
        spent: Reason = Reason.RETRIES_EXHAUSTED,
    ) -> None:
        record.failures += 1
        if record.failures > self.ctx.settings.submit_max_retries:
            if spent is Reason.TRANSIENT_EXHAUSTED:  # the payer's own transient codes stand
                record.reason = spent
            else:
                record.reject(HOST_ERROR_REJECT, spent)  # its tries are spent
            return
        record.stage = Stage.MAPPED  # open again: sent again next round, same key
        retry.append(record)

    def _learn(self, record: WorkRecord, *, ok: bool) -> None:
        """Remember a route the gateway answered for (once) or said it has not (404)."""
        route = route_of(record)
        if not ok:
            self.ctx.routes.remember_miss(*route)
            self.known.discard(route)
        elif route not in self.known:
            self.ctx.routes.remember_ok(*route)
            self.known.add(route)


def _money(record: WorkRecord, answer: Adjudicated) -> None:
    """The paid answer's authorization number and pricing onto the record (None otherwise)."""
    pricing = answer.pricing
    record.authorization_number = answer.authorization_number
    amounts = (
        (pricing.total_amount_paid, pricing.patient_pay_amount, pricing.ingredient_cost_paid)
        if pricing is not None
        else (None, None, None)
    )
    record.amount_paid, record.patient_pay, record.ingredient_cost_paid = (
        None if amount is None else str(amount) for amount in amounts
    )
