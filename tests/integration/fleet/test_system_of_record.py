"""PostgreSQL is the system of record: every stage of every claim is in its audit
trail, results and audit outlive Redis, and a record link that dies after its
commit is finished by its redelivery, exactly once."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from config import configure
from rxfleet import cli
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.gateway.sandbox.scenario import Scenario, Storm, Throttle
from rxfleet.stores.database import migrations
from rxfleet.stores.runs import RunStore
from tests.integration.fleet.fleet_support import Fleet
from tests.integration.fleet.test_gateway_faults import clean_claims

pytestmark = pytest.mark.integration


def _audit(run_id: str, claim_id: str, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / f"audit-{claim_id}.jsonl"
    assert cli.main(["audit", run_id, "--claim", claim_id, "-o", str(out)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


def _stages(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['stage']}:{e['outcome']}" if e["stage"] == "attempt" else e["stage"]
            for e in events]  # fmt: skip


def _mixed_input(path: Path) -> tuple[list[str], str, str]:
    """Payable claims, one rejected by the payer (75) and one that cannot be sent."""
    ids = clean_claims(path, 40, seed=21)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    lines[1].update(ndc="00074-4339-02", quantity_dispensed=2, days_supply=28)  # 75: PA
    lines[2]["ndc"] = "0071015523"  # a plain 10-digit NDC: ambiguous, quarantined
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return ids, ids[1], ids[2]


def test_audit_shows_every_stage_of_paid_rejected_quarantined_throttled_and_replayed_claims(
    fleet: Fleet, tmp_path: Path
) -> None:
    source = tmp_path / "mixed.jsonl"
    ids, rejected, quarantined = _mixed_input(source)
    throttled = ids[5]
    fleet.reset(
        Scenario(
            throttles=(Throttle(status=503, claim_ids=frozenset({throttled}), retry_after=0.2),),
            storm=Storm(start_after=0, requests=1),  # the very first claim request: a 401
        )
    )
    run_id = fleet.run(source, batch_size=40).run_id
    sent = ["ingested", "validated", "mapped"]
    after = ["sent", "routed", "recorded"]
    assert _stages(_audit(run_id, ids[10], tmp_path)) == [*sent, "attempt:P", *after]
    assert _stages(_audit(run_id, rejected, tmp_path)) == [*sent, "attempt:R", *after]
    assert _stages(_audit(run_id, quarantined, tmp_path)) == ["ingested", "validated", "recorded"]
    retried = _stages(_audit(run_id, throttled, tmp_path))
    assert retried == [*sent, "attempt:GatewayUnavailable", "attempt:P", *after]
    refused = [e for e in fleet.audit(run_id) if e["outcome"] == "AuthenticationFailed"]
    assert len(refused) == 1  # exactly one 401, replayed with the new token
    replayed = _stages(_audit(run_id, refused[0]["claim_id"], tmp_path))
    assert replayed == [*sent, "attempt:AuthenticationFailed", "attempt:P", *after]
    recorded = [e for e in _audit(run_id, ids[10], tmp_path) if e["stage"] == "recorded"]
    assert recorded[0]["payload_hash"] and recorded[0]["matrix_version"]


@pytest.fixture
def empty_redis(fleet: Fleet) -> Iterator[str]:
    """A Redis that knows nothing (as after a restart without persistence)."""
    server = LocalRedis().start()
    saved = fleet.settings
    try:
        configure(redis_url=server.url)
        yield server.url
    finally:
        configure(**saved.model_dump())
        server.stop()


def test_results_and_audit_come_from_the_database_when_redis_lost_everything(
    fleet: Fleet, tmp_path: Path, empty_redis: str
) -> None:
    configure(redis_url=fleet.settings.redis_url)
    ids = clean_claims(tmp_path / "c.jsonl", 120, seed=22)
    run_id = fleet.run(tmp_path / "c.jsonl", batch_size=50).run_id
    configure(redis_url=empty_redis)  # the fleet's Redis comes back empty
    assert redis.Redis.from_url(empty_redis).dbsize() == 0
    out = tmp_path / "again.jsonl"
    assert cli.main(["results", run_id, "-o", str(out)]) == 0
    assert [json.loads(line)["claim_id"] for line in out.read_text().splitlines()] == ids
    trail = tmp_path / "trail.jsonl"
    assert cli.main(["audit", run_id, "-o", str(trail)]) == 0
    stages = Counter(json.loads(line)["stage"] for line in trail.read_text().splitlines())
    assert stages["recorded"] == stages["sent"] == stages["ingested"] == len(ids)


def test_a_record_link_that_dies_after_its_commit_is_finished_once_by_its_redelivery(
    fleet: Fleet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fleet.reset()
    ids = clean_claims(tmp_path / "c.jsonl", 150, seed=23)
    real_retire, deaths = RunStore.retire, Counter[str]()

    def dies_once_per_batch(
        self: RunStore, run_id: str, first: int, *more: Any, **named: Any
    ) -> Any:
        if deaths[f"{run_id}/{first}"] == 0:  # the database has committed; Redis not yet told
            deaths[f"{run_id}/{first}"] += 1
            raise redis.ConnectionError("the worker's connection died here")
        return real_retire(self, run_id, first, *more, **named)

    monkeypatch.setattr(RunStore, "retire", dies_once_per_batch)
    result = fleet.run(tmp_path / "c.jsonl", batch_size=50, timeout=120)
    assert sum(deaths.values()) == 3  # every batch's record link died once
    rows = fleet.results(result.run_id)
    assert [r["claim_id"] for r in rows] == ids
    recorded = Counter(e["claim_id"] for e in fleet.audit(result.run_id)
                       if e["stage"] == "recorded")  # fmt: skip
    assert set(recorded.values()) == {1} and len(recorded) == len(ids)
    deadline = time.monotonic() + 30  # the database has it all; Redis hears it on redelivery
    while fleet.runs.progress(result.run_id)[0] != len(ids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fleet.runs.progress(result.run_id)[0] == len(ids)  # counted once
    submissions = [fleet.db.claim_submissions(claim_id) for claim_id in ids]
    assert all(len(found) == 1 for found in submissions)  # one each, none twice
    assert all(f[0]["idempotency_key"].startswith(f[0]["claim_id"] + "~") for f in submissions)


def test_db_upgrade_and_prune_from_the_command_line(
    fleet: Fleet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["db", "upgrade"]) == 0
    assert f"schema version {migrations()[-1].version}" in capsys.readouterr().out
    assert cli.main(["db", "prune"]) == 0
    pruned = json.loads(capsys.readouterr().out)
    assert pruned["retention_days"] == 2190
    assert set(pruned["deleted"]) == {
        "results", "submissions", "dead_letters", "runs", "audit_events"
    }  # fmt: skip
