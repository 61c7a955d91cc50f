"""The real fleet the integration tests drive (imported by name: keep it unique)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from config import Settings
from rxfleet import context
from rxfleet.claims.phi import PhiTokenizer, parse_key
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.formats.x12 import load_payer_routes
from rxfleet.gateway.sandbox.scenario import Scenario
from rxfleet.gateway.sandbox.server import SandboxGateway
from rxfleet.phikeys import tokenizer, vault
from rxfleet.producer import Ingest, ProduceResult, produce, start_run
from rxfleet.report import wait_for
from rxfleet.stores.connection import get_redis
from rxfleet.stores.runs import RunStore
from workers.pipeline import send_batch

PHI_KEY = "Ez534Ppe_EH8r2znqocUiZlX6oFcbOUltJ7nbtkNu8Y="
VAULT_KEY = "LF0KGcb_Y2PQF3OV5jMhozMRdhtUcmJjHfTJ-4qmo_Y="
ROOT = Path(__file__).resolve().parents[3]
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

    def run(self, *inputs: Path, batch_size: int = 100, timeout: float = 120) -> ProduceResult:
        """Produce ``inputs`` through the real chain and wait for every claim."""
        paths = [str(p) for p in inputs]
        run_id = start_run(self.runs, context.crosswalk(), self.settings, paths, batch_size)
        ingest = Ingest(run_id, tokenizer(self.settings), vault(self.settings))
        routes = load_payer_routes(self.settings.payer_routes)
        result = produce(self.runs, run_id, paths, ingest, batch_size, send_batch, routes)
        done, total = wait_for(self.runs, run_id, timeout, lambda d, t: None)
        assert total is not None and done == total, f"run {run_id}: {done} of {total} recorded"
        return result

    def results(self, run_id: str) -> list[dict[str, Any]]:
        _, total = self.runs.progress(run_id)
        return list(self.runs.results(run_id, total or 0))

    def reset(self, scenario: Scenario | None = None) -> None:
        self.gateway.scenario = scenario or Scenario()
        self.gateway.reset()
        context.tokens().clear()
        context.pause().clear()
        context.routes().clear()
        context.breaker().clear()


def phi_tokenizer() -> PhiTokenizer:
    return PhiTokenizer(parse_key(PHI_KEY, "RXFLEET_PHI_KEY"))
