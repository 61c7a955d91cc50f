"""A real fleet for the session: a private Redis server, the sandbox gateway
over HTTP, and a real Celery worker (WorkController, thread pool) consuming both
queues. Tests that need different faults set ``fleet.gateway.scenario``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from pydantic import SecretStr

from config import Settings, configure
from rxclaims.phi import PhiTokenizer, key_bytes
from rxfleet.phikeys import tokenizer, vault
from rxfleet.producer import Ingest, ProduceResult, produce, start_run
from rxfleet.redisconn import forget_clients, get_redis
from rxfleet.redisserver import LocalRedis
from rxfleet.report import wait_for
from rxfleet.runs import RunStore, run_store
from rxgateway.sandbox import SandboxGateway
from rxgateway.scenario import Scenario

PHI_KEY = "test-phi-key-0123456789abcdef"
VAULT_KEY = "test-vault-key-0123456789abcdef"
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
        return run_store(self.client, self.settings.key_prefix, self.settings.run_ttl_seconds)

    def run(self, *inputs: Path, batch_size: int = 100, timeout: float = 120) -> ProduceResult:
        """Produce ``inputs`` through the real chain and wait for every claim."""
        from workers.pipeline import send_batch

        paths = [str(p) for p in inputs]
        run_id = start_run(self.runs, self.settings, paths, batch_size)
        ingest = Ingest(run_id, tokenizer(self.settings), vault(self.settings))
        result = produce(self.runs, run_id, paths, ingest, batch_size, send_batch)
        done, total = wait_for(self.runs, run_id, timeout, lambda d, t: None)
        assert total is not None and done == total, f"run {run_id}: {done} of {total} recorded"
        return result

    def results(self, run_id: str) -> list[dict[str, object]]:
        _, total = self.runs.progress(run_id)
        return list(self.runs.results(run_id, total or 0))

    def reset(self, scenario: Scenario | None = None) -> None:
        self.gateway.scenario = scenario or Scenario()
        self.gateway.reset()
        keys = self.runs.keys
        self.client.delete(keys.token, keys.pause, keys.token_stats)
        for key in self.client.scan_iter(f"{keys.prefix}:gateway:miss:*"):
            self.client.delete(key)


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    from workers import app as app_module
    from workers.inprocess import worker_thread

    server = LocalRedis().start()
    gateway = SandboxGateway()
    gateway.start()
    settings = configure(
        redis_url=server.url,
        gateway_url=gateway.url,
        token_url=gateway.token_url,
        phi_key=SecretStr(PHI_KEY),
        vault_key=SecretStr(VAULT_KEY),
        backoff_base=0.2,
        backoff_cap=1.0,
        submit_max_retries=4,
    )
    app = app_module.configure(settings)
    try:
        with worker_thread(app, [settings.queue_cpu, settings.queue_gateway], concurrency=4):
            yield Fleet(server, gateway, settings)
    finally:
        gateway.stop()
        forget_clients()
        server.stop()


@pytest.fixture
def clean_fleet(fleet: Fleet) -> Fleet:
    fleet.reset()
    return fleet


def phi_tokenizer() -> PhiTokenizer:
    return PhiTokenizer(key_bytes(PHI_KEY))
