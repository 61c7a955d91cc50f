"""Planning a window: one Redis read, then what to send, end here, or wait for.

The read is one pipelined round trip: the fleet pauses (the gateway's and an
operator's hold), the breakers' gates, the run's abort flag, the window's send
leases, its vault blobs, the route memos of its BIN/PCN pairs and which of its
claims have an earlier submission of their claim id ahead of them (only those are
looked at further: ``order``). Each store queues its own commands and hands back
its own decoder, so nothing here counts reply slots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from rxfleet.claims.rejects import ROUTING_REJECT, Reason
from rxfleet.claims.work import WorkRecord
from rxfleet.links.submit.breakers import RoundBreakers
from rxfleet.links.submit.context import MAX_REPLAYS, SubmitContext, route_of
from rxfleet.links.submit.order import held_back
from rxfleet.stores import clock
from rxfleet.stores.pause import Hold
from rxfleet.stores.routes import RouteState
from rxfleet.stores.runs import Lease

Route = tuple[str, str]
#: A window held by an operator's pause comes back this often (at most), so that
#: ``rxfleet unpause`` is heard within about this long.
HOLD_RECHECK = 1.0
Gate = Callable[[], tuple[float, bool]]  # a breaker's decision, made when asked


@dataclass
class Plan:
    """What one window's Redis read said."""

    gate_at: float  # when the gate (pause, breakers) was read: a lower bound of what it saw
    wait: float = 0.0
    why: str = ""
    aborted: bool = False
    send: list[WorkRecord] = field(default_factory=list)
    send_local: list[WorkRecord] = field(default_factory=list)  # ended here (a known 404)
    busy: list[WorkRecord] = field(default_factory=list)  # leased elsewhere, held, probing
    route_busy: bool = False
    probed: set[Route] = field(default_factory=set)  # route probes this window holds
    sealed: dict[int, str | None] = field(default_factory=dict)  # seq → vault blob


class Planner:
    """Reads the fleet's state for a window and chooses what becomes of each claim."""

    def __init__(
        self, ctx: SubmitContext, run_id: str, owner: str, breakers: RoundBreakers
    ) -> None:
        self.ctx, self.run_id, self.owner, self.breakers = ctx, run_id, owner, breakers
        self.known: set[Route] = set()  # routes already remembered as good

    def plan(self, window: list[WorkRecord]) -> Plan:
        ctx, seqs = self.ctx, [r.seq for r in window]
        pipe = ctx.runs.pipeline()
        plan = Plan(gate_at=clock.now())  # before the read: a lower bound of what it saw
        paused = ctx.pause.read(pipe, since=plan.gate_at)
        held = ctx.pause.read_hold(pipe)
        gates = [(b.name, b.read(pipe)) for b in self.breakers.to_read()]
        aborted = ctx.runs.aborted_flag(pipe, self.run_id)
        leases = ctx.runs.lease(pipe, self.run_id, seqs, self.owner, self._lease_ms())
        sealed = ctx.runs.read_sealed(pipe, self.run_id, seqs)
        routes = sorted({route_of(r) for r in window})
        memos = {route: ctx.routes.read(pipe, *route) for route in routes}
        waiting = ctx.order.waiting(pipe, self.run_id, seqs) if ctx.order else None
        replies = pipe.execute()
        gated = [(name, partial(decode, replies)) for name, decode in gates]
        self._gate(plan, paused(replies), gated, held(replies))
        plan.aborted = aborted(replies)
        plan.sealed = dict(zip(seqs, sealed(replies), strict=True))
        states = {route: memo(replies) for route, memo in memos.items()}
        self.known.update(route for route, state in states.items() if state is RouteState.KNOWN)
        if plan.wait <= 0:  # a window that sends nothing takes no probe
            behind = self._held(window, waiting(replies) if waiting else set())
            chosen = list(zip(window, leases(replies), strict=True))
            if plan.aborted:  # only claims in doubt (a try behind them) are asked again
                chosen = [(r, lease) for r, lease in chosen if r.attempts > 0]
            self._choose(plan, chosen, states, behind)
        return plan

    def _held(self, window: list[WorkRecord], flagged: set[int]) -> set[int]:
        """Claims of the window that an earlier submission of their claim id holds back."""
        if not flagged or self.ctx.order is None:
            return set()
        records = [r for r in window if r.seq in flagged]
        return held_back(self.ctx.order, self.ctx.runs, self.run_id, records)

    def _gate(
        self, plan: Plan, paused: float, gates: Sequence[tuple[str, Gate]], held: Hold | None
    ) -> None:
        """An operator's hold, then the fleet pause; then each breaker (deciding a half-open
        one takes its probe). The hold is not noted in the process: unpause is heard at once."""
        if held is not None and held.remaining() > 0:
            plan.wait, plan.why = min(held.remaining(), HOLD_RECHECK), "paused by an operator"
            return
        paused = max(paused, self.ctx.local_pause.remaining())
        if paused > 0:
            self.ctx.local_pause.note(paused)
            plan.wait, plan.why = paused, "fleet pause"
            return
        for name, decide in gates:
            wait, probe = decide()
            if probe:
                self.breakers.hold(name)
            if wait > 0:
                plan.wait, plan.why = wait, f"{name} breaker open"
                return

    def _choose(
        self,
        plan: Plan,
        chosen: list[tuple[WorkRecord, Lease]],
        states: dict[Route, RouteState | None],
        held: set[int],
    ) -> None:
        for record, lease in chosen:
            if lease is Lease.GONE:
                continue  # recorded meanwhile by another delivery: nothing to do
            if lease is not Lease.GRANTED or record.seq in held:
                plan.busy.append(record)
                continue
            state = self._route_state(route_of(record), plan, states)
            if state is RouteState.MISS:
                record.reject(ROUTING_REJECT, Reason.ROUTING_MISS)
                plan.send_local.append(record)
            elif state in (RouteState.KNOWN, RouteState.PROBE):
                plan.send.append(record)
            else:
                plan.busy.append(record)
                plan.route_busy = True

    def _route_state(
        self, route: Route, plan: Plan, states: dict[Route, RouteState | None]
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
