"""One delivery of the submit task: windows until done, stopped or out of time.

Each window is planned (``plan``), sent (``send``), settled (``settle``) and
written back in one Redis trip; this module holds the loop and what a window's
end means for the round: go on, wait for Retry-After, back off, give up.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Iterable

from rxfleet.claims.rejects import HOST_ERROR_REJECT
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.errors import RetryableError
from rxfleet.links.submit.breakers import RoundBreakers
from rxfleet.links.submit.context import (
    MAX_REPLAYS,
    SubmitContext,
    SubmitReport,
    backoff,
    log,
    token_or_wait,
)
from rxfleet.links.submit.plan import Plan, Planner
from rxfleet.links.submit.send import Dispatch, Outcome
from rxfleet.links.submit.settle import Settler, spent_reason
from rxfleet.stores import clock

ROUTE_PROBE_WAIT = 0.2  # a batch waiting for another's route probe holds back this long
LEASE_HELD_WAIT = 1.0  # a batch whose claims another holder is sending comes back after this
KEY_WAIT = 5.0  # a batch sealed under a vault key this worker lacks comes back after this
_TOLD: set[str] = set()  # the vault key ids this process said it lacks


class Round:
    """One delivery of the submit task: windows until done, stopped or out of time."""

    def __init__(
        self, ctx: SubmitContext, run_id: str, batch: range, report: SubmitReport, failures: int
    ) -> None:
        self.ctx, self.run_id, self.batch, self.report = ctx, run_id, batch, report
        self.failures = failures
        self.final = failures >= ctx.settings.submit_max_retries
        self.deadline = time.monotonic() + ctx.settings.submit_round_seconds
        self.owner = f"{ctx.owner}:{uuid.uuid4().hex[:8]}"  # this delivery's leases
        self.breakers = RoundBreakers(ctx.health, ctx.auth)
        self.planner = Planner(ctx, run_id, self.owner, self.breakers)
        self.dispatch = Dispatch(ctx, run_id)
        self.settler = Settler(ctx, report, self.breakers, self.planner.known)
        self.later: list[WorkRecord] = []  # failed this round: back next round, after backoff

    def run(self, todo: list[WorkRecord]) -> None:
        pending = deque(todo)
        try:
            while pending and self.report.retry_in is None:
                self._window(pending)
        finally:
            self.breakers.release()
        if self.later and self.report.retry_in is None:
            delay = backoff(self.ctx.settings, 1 if self.report.done else self.failures)
            self._defer(delay, "claims to try again", deferred=False)
        self.report.still_open = len(pending) + len(self.later)

    def _window(self, pending: deque[WorkRecord]) -> None:
        if time.monotonic() > self.deadline:
            self._defer(0.0, "round time budget", deferred=True)
            return
        size = 1 if self.breakers.probing() else self.ctx.window_size()
        window = [pending.popleft() for _ in range(min(size, len(pending)))]
        plan = self.planner.plan(window)
        self.dispatch.sealed.update(plan.sealed)
        if plan.aborted:
            window = self._abort_unsent(window, pending)
            if not window:
                return
        lacked = self._lacked_key(plan)
        if plan.wait > 0 or lacked:
            for route in plan.probed:  # taken only when the window would go (never on a wait)
                self.ctx.routes.release(*route)
            self._unlease(window)
            pending.extendleft(reversed(window))
            wait, why = (plan.wait, plan.why) if plan.wait > 0 else (KEY_WAIT, lacked)
            self._defer(wait, why, deferred=True)
            return
        self._send_window(plan, pending)

    def _lacked_key(self, plan: Plan) -> str:
        """Why the window waits when a claim in it was sealed under a vault key this
        worker lacks (a producer given a new key before the workers): said once a key
        id, in the worker's log; the claims wait, for this worker or another, and use
        up no retry. Empty when every blob opens here."""
        sealed = (plan.sealed.get(r.seq) for r in plan.send)
        kids = {kid for blob in sealed if blob for kid in [self.ctx.vault.lacks(blob)] if kid}
        if not kids:
            return ""
        for kid in sorted(kids - _TOLD):
            _TOLD.add(kid)
            log.warning(
                "vault key id %s: this worker lacks it and cannot open the claims sealed "
                "under it; they wait. Give the submit workers that key (RXFLEET_VAULT_KEY, "
                "or RXFLEET_VAULT_KEYS_OLD) and restart them", kid,
            )  # fmt: skip
        return f"vault key {','.join(sorted(kids))} missing on this worker"

    def _abort_unsent(
        self, window: list[WorkRecord], pending: deque[WorkRecord]
    ) -> list[WorkRecord]:
        """The run was aborted: claims never sent end ``99 ABORTED``; a claim with a try
        behind it (its answer lost: adjudicated or not, nobody knows) is in doubt and
        is asked again under its own key (the answer replayed, if there was one). The
        window's claims in doubt (the planner chose only those)."""
        everything = [*window, *pending, *self.later]
        unsent = [r for r in everything if r.attempts == 0]
        kept = [r for r in pending if r.attempts > 0]
        pending.clear()
        pending.extend(kept)
        self.later = [r for r in self.later if r.attempts > 0]
        for record in unsent:
            record.end_aborted()
        self.ctx.runs.save(self.run_id, unsent, self.batch)
        self.report.done += len(unsent)
        self.report.reason = "run aborted"
        return [r for r in window if r.attempts > 0]

    def _unlease(self, records: Iterable[WorkRecord]) -> None:
        self.ctx.runs.release(self.run_id, [r.seq for r in records], self.owner)

    def _send_window(self, plan: Plan, pending: deque[WorkRecord]) -> None:
        sent = list(plan.send)
        try:
            retry = self._exchange(sent, plan.gate_at) if sent else []
        except RetryableError:  # no token to be had: the whole window waits
            retry = sent
        finally:
            for route in plan.probed:
                self.ctx.routes.release(*route)
        ended = [*sent, *plan.send_local]
        self.ctx.runs.save(self.run_id, ended, self.batch)
        self.report.done += sum(1 for r in ended if r.stage == Stage.SENT)
        self._after_window(plan, sent, retry, pending)

    def _exchange(self, records: list[WorkRecord], gate_at: float) -> list[WorkRecord]:
        """Send, settle, and replay the 401s once the fleet rotated; the claims to retry."""
        ctx = self.ctx
        token = token_or_wait(lambda: ctx.tokens.ensure(ctx.gateway))
        outcomes = self.dispatch.post(records, token, gate_at)
        retry: list[WorkRecord] = []
        for replay in range(MAX_REPLAYS + 1):
            last = replay == MAX_REPLAYS
            refused = [o.record for o in outcomes if self.settler.apply(o, retry, last=last)]
            if not refused:
                break
            outcomes = self._replay(refused)
        return retry

    def _replay(self, refused: list[WorkRecord]) -> list[Outcome]:
        ctx = self.ctx
        token = token_or_wait(lambda: ctx.tokens.rotate(ctx.gateway))
        gate_at = clock.now()
        paused = max(ctx.pause.remaining(), ctx.local_pause.remaining())
        if paused > 0:  # the fleet was told to wait meanwhile: the replays wait too
            ctx.local_pause.note(paused)
        return self.dispatch.post(refused, token, gate_at)

    def _after_window(
        self, plan: Plan, sent: list[WorkRecord], retry: list[WorkRecord],
        pending: deque[WorkRecord],
    ) -> None:  # fmt: skip
        self._unlease([*retry, *plan.busy])
        pending.extend(plan.busy)
        retry_after = self.settler.retry_after
        if retry_after is not None:
            pending.extendleft(reversed(retry))
            self.ctx.pause.lengthen(retry_after)
            self._defer(retry_after, "gateway asked to wait (Retry-After)", deferred=True)
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
            self._end([*retry, *pending, *self.later], pending, "retries exhausted")
            return
        pending.extendleft(reversed(retry))
        delay = backoff(self.ctx.settings, self.failures)
        self._defer(delay, "every request of a window failed", deferred=False)

    def _defer(self, delay: float, reason: str, *, deferred: bool) -> None:
        self.report.retry_in = delay
        self.report.reason = reason
        self.report.deferred = deferred

    def _end(
        self, records: Iterable[WorkRecord], pending: deque[WorkRecord], reason: str, *,
        aborted: bool = False,
    ) -> None:  # fmt: skip
        """End every open claim of the batch: rejected 99 (retries spent) or aborted."""
        ended = list(records)
        pending.clear()
        self.later.clear()
        for record in ended:
            if aborted:
                record.end_aborted()
            else:
                record.reject(HOST_ERROR_REJECT, spent_reason(record))
        self.ctx.runs.save(self.run_id, ended, self.batch)
        self.report.done += len(ended)
        self.report.reason = reason
