"""Sending a window: bodies with their PHI for this one hop, through the sender.

Every request goes through the context's ``Sender`` (one transport, whatever
the window's size: a breaker probe and a lone 401 replay too). The first 429 or
503 with Retry-After stops new sends of this round and of this process.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from rxfleet.claims.model import gateway_body, is_reversal
from rxfleet.claims.work import WorkRecord
from rxfleet.errors import GatewayUnavailable, RateLimited, RxFleetError
from rxfleet.gateway.client import Job
from rxfleet.links.submit.context import Adjudicated, Heard, SubmitContext, Timed
from rxfleet.stores.tokens import Token

#: Seconds between two reads of the fleet's pauses while a window is sent.
RECHECK_S = 0.5


@dataclass
class Outcome:
    """What became of one claim's request."""

    record: WorkRecord
    token: Token
    gate_at: float
    answer: Adjudicated | None = None
    error: RxFleetError | None = None
    skipped: bool = False  # the window was stopped before this one went out
    seconds: float = 0.0  # how long the request took


class Dispatch:
    """Hands windows to the sender; knows the vault blobs the planner read."""

    def __init__(self, ctx: SubmitContext, run_id: str) -> None:
        self.ctx, self.run_id = ctx, run_id
        self.stop = threading.Event()
        self.sealed: dict[int, str | None] = {}
        self._checked, self._held = time.monotonic(), False  # the plan just read both

    def post(self, records: Sequence[WorkRecord], token: Token, gate_at: float) -> list[Outcome]:
        """Send ``records`` with ``token``; one outcome per record, in order."""
        ttl = max(0, int(token.ttl()))
        jobs = [Job(self._body(r), token.value, ttl, idempotency_key(r)) for r in records]
        results = self.ctx.sender.send(jobs, self._may_send, self._heard)
        return [
            _outcome(record, token, gate_at, result)
            for record, result in zip(records, results, strict=True)
        ]

    def _may_send(self) -> bool:
        """Right before each request: not stopped by this round, not paused in this process,
        nor by the fleet (an operator's pause, another worker's Retry-After: read again
        every ``RECHECK_S``, so a window sent slowly, under the fleet's rate, stops too)."""
        return (not self.stop.is_set() and self.ctx.local_pause.remaining() <= 0
                and not self._fleet_holds())  # fmt: skip

    def _fleet_holds(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= RECHECK_S:
            self._checked = now
            with contextlib.suppress(redis.RedisError):  # Redis away: the round finds out
                pipe = self.ctx.runs.pipeline()
                paused, held = self.ctx.pause.read(pipe), self.ctx.pause.read_hold(pipe)
                replies = pipe.execute()
                self._held = paused(replies) > 0 or held(replies) is not None
        return self._held

    def _heard(self, result: Heard) -> None:
        """Each answer as it comes: the first 429/503 with Retry-After stops new sends."""
        if isinstance(result, RateLimited | GatewayUnavailable) and result.retry_after is not None:
            self.stop.set()
            self.ctx.local_pause.note(result.retry_after)

    def _body(self, record: WorkRecord) -> dict[str, Any]:
        """The HTTP body: the claim's fields and, for this one hop, its PHI from the vault
        (a reversal's identifying fields only: no PHI, no GPI)."""
        body = gateway_body(record.claim or {})
        if is_reversal(record.claim or {}):
            return body
        sealed = self.sealed.get(record.seq)
        if sealed is not None:
            phi = self.ctx.vault.open(sealed, context=f"{self.run_id}:{record.seq}")
            body.update({name: value for name, value in phi.items() if value is not None})
        body["gpi"] = record.gpi
        return body


def idempotency_key(record: WorkRecord) -> str:
    """The submission's Idempotency-Key: the one made at ingestion (the claim id
    only for a record queued before keys were made, which carries none)."""
    return record.key or str(record.claim_id)


def _outcome(record: WorkRecord, token: Token, gate_at: float, timed: Timed | None) -> Outcome:
    if timed is None:
        return Outcome(record, token, gate_at, skipped=True)
    result, seconds = timed
    if isinstance(result, RxFleetError):
        return Outcome(record, token, gate_at, error=result, seconds=seconds)
    return Outcome(record, token, gate_at, answer=result, seconds=seconds)
