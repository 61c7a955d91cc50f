"""The real fleet the integration tests drive (imported by name: keep it unique)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench.harness import PHI_KEY, ROOT
from config import Settings
from rxfleet import context
from rxfleet.claims.phi import PhiTokenizer, parse_key
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.formats.payer_sheet import load_payer_sheet
from rxfleet.formats.x12 import load_payer_routes
from rxfleet.gateway.sandbox.scenario import Scenario
from rxfleet.gateway.sandbox.server import SandboxGateway
from rxfleet.lifecycle import Waiter, open_run, progress
from rxfleet.links.ingest import Ingest
from rxfleet.phikeys import tokenizer, vault
from rxfleet.producer import Producer, ProduceResult
from rxfleet.stores.connection import get_redis
from rxfleet.stores.database import Database
from rxfleet.stores.runs import RunStore
from workers.pipeline import send_batch

SAMPLE = ROOT / "samples" / "claims.jsonl"


@dataclass
class Fleet:
    server: LocalRedis
    gateway: SandboxGateway
    settings: Settings

    @property
    def client(self) -> redis.Redis:
        return get_redis()

    @property
    def runs(self) -> RunStore:
        return context.runs()

    @property
    def db(self) -> Database:
        return context.database()

    def run(self, *inputs: Path, batch_size: int = 100, timeout: float = 120) -> ProduceResult:
        """Produce ``inputs`` through the real chain (always a fresh run) and wait for it."""
        paths = [str(p) for p in inputs]
        plan = open_run(self.runs, self.db, context.crosswalk(), self.settings, paths, batch_size,
                        new=True)  # fmt: skip
        result = self.producer(plan.run_id, batch_size).produce(paths)
        waiter = Waiter(lambda: progress(self.runs, self.db, plan.run_id), say=lambda line: None)
        done = waiter.wait(timeout, lambda d, t: None)
        assert done.finished, f"run {plan.run_id}: {done.done} of {done.total} recorded"
        return result

    def producer(self, run_id: str, batch_size: int, resume_from: int | None = None) -> Producer:
        holder = f"test-{run_id}"
        assert self.runs.claim_producer(run_id, holder, 15)
        return Producer(
            runs=self.runs,
            db=self.db,
            ingest=Ingest(run_id, tokenizer(self.settings), vault(self.settings)),
            send=send_batch,
            payer_routes=load_payer_routes(self.settings.payer_routes),
            payer_sheet=load_payer_sheet(self.settings.payer_sheet),
            batch_size=batch_size,
            max_inflight=self.settings.max_inflight,
            holder=holder,
            resume_from=resume_from,
            order=context.order(),
            slices=self.settings.intake_slices,
        )

    def results(self, run_id: str) -> list[dict[str, Any]]:
        return list(self.db.results(run_id))

    def audit(self, run_id: str) -> list[dict[str, Any]]:
        """The run's audit rows, each with its ``detail`` (e.g. ``gate_at``) merged in."""
        return [{**row, **(row["detail"] or {})} for row in self.db.audit(run_id)]

    def reset(self, scenario: Scenario | None = None) -> None:
        self.gateway.scenario = scenario or Scenario()
        self.gateway.reset()
        context.tokens().clear()
        context.pause().clear()
        context.routes().clear()
        context.health_breaker().clear()
        context.auth_breaker().clear()


def phi_tokenizer() -> PhiTokenizer:
    return PhiTokenizer(parse_key(PHI_KEY, "RXFLEET_PHI_KEY"))
