"""The gateway misbehaving on purpose, against the real fleet (issue 4's proofs
at CI scale; bench/chaos.py runs them at 10k claims on separate processes)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config import configure
from rxfleet import context
from rxfleet.claims import synth
from rxfleet.dlq import ReplayStores, replay
from rxfleet.gateway.sandbox.scenario import Drop, Scenario, Storm, Throttle, claim_of
from rxfleet.lifecycle import Waiter, progress
from rxfleet.phikeys import vault
from rxfleet.stores.tokens import TokenStore
from tests.integration.fleet.fleet_support import Fleet
from workers.pipeline import send_batch

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def clean_claims(path: Path, n: int, seed: int = 7) -> list[str]:
    """``n`` payable claims with distinct ids; returns the ids."""
    return synth.write_claims(path, n, seed=seed, claim_id=lambda i: f"F{seed}-{i:06d}")


@pytest.fixture
def settings_override(fleet: Fleet) -> Iterator[None]:
    saved = fleet.settings
    yield
    fleet.settings = configure(**saved.model_dump())


def _store(fleet: Fleet) -> TokenStore:
    return context.tokens()


def test_expiring_and_revoked_tokens_cost_no_claim(fleet: Fleet, tmp_path: Path) -> None:
    fleet.reset(Scenario(token_lifetime=1.5, revoke_every=40))
    ids = clean_claims(tmp_path / "c.jsonl", 400)
    result = fleet.run(tmp_path / "c.jsonl", batch_size=50)
    rows = fleet.results(result.run_id)
    assert [r["claim_id"] for r in rows] == ids
    assert all(r["status"] == "PAID" for r in rows), {
        r["reject_codes"][0] for r in rows if r["reject_codes"]
    }
    stats = fleet.gateway.stats()
    assert stats["by_status"].get("401", 0) >= 400 // 40 - 1  # the revocations did happen
    store = _store(fleet)
    rotations = store.version()
    assert stats["token_fetches"] <= rotations + 1
    assert store.stats().get("auth_REJ_001", 0) >= 1


def test_retry_after_is_honoured_per_claim_and_fleet_wide(fleet: Fleet, tmp_path: Path) -> None:
    ids = clean_claims(tmp_path / "c.jsonl", 120, seed=8)
    throttles = (
        Throttle(status=429, claim_ids=frozenset(ids[10:13]), attempts=1, retry_after=1.0),
        Throttle(status=503, claim_ids=frozenset(ids[70:72]), attempts=2, retry_after=1.0,
                 retry_after_format="http-date"),
    )  # fmt: skip
    fleet.reset(Scenario(throttles=throttles))
    context.pause().clear()
    result = fleet.run(tmp_path / "c.jsonl", batch_size=20)
    rows = fleet.results(result.run_id)
    assert all(r["status"] == "PAID" for r in rows), [r for r in rows if r["status"] != "PAID"]
    log = fleet.gateway.stats()["log"]
    told = [e for e in log if e.get("not_before")]
    assert len(told) == 3 + 4, told
    for entry in told:
        later = [e for e in log if e["key"] == entry["key"] and e["started"] > entry["finished"]]
        assert later, entry
        early = min(e["started"] for e in later) - entry["not_before"]
        assert early >= 0, (entry, later, early)
    pauses = context.pause().history()
    assert len(pauses) >= 3
    attempts = [e for e in fleet.audit(result.run_id) if e["stage"] == "attempt"]
    claim_log = [e for e in log if e["path"] == "/v1/claims"]
    assert len(attempts) == len(claim_log), (len(attempts), len(claim_log))
    for pause in pauses:
        gated = [a for a in attempts if pause["set_at"] < a["gate_at"] < pause["until"]]
        assert gated == [], f"the fleet started requests during a pause: {gated[:3]}"
        for entry in (e for e in log if pause["set_at"] < e["started"] < pause["until"]):
            mine = [a for a in attempts if a["claim_id"] == claim_of(entry["key"])]
            assert any(a["gate_at"] <= pause["set_at"] for a in mine), "not in flight"


def test_a_lost_response_is_replayed_not_readjudicated(fleet: Fleet, tmp_path: Path) -> None:
    ids = clean_claims(tmp_path / "c.jsonl", 60, seed=9)
    lost = frozenset(ids[5:8])
    fleet.reset(Scenario(drops=(Drop(claim_ids=lost, attempts=1, after_adjudication=True),)))
    result = fleet.run(tmp_path / "c.jsonl", batch_size=30)
    rows = {r["claim_id"]: r for r in fleet.results(result.run_id)}
    claims = fleet.gateway.stats()["claims"]
    for claim_id in lost:
        assert rows[claim_id]["status"] == "PAID" and rows[claim_id]["attempts"] == 2
        assert claims[claim_id] == {"keys": 1, "requests": 2, "adjudications": 1}
    assert all(v["adjudications"] == 1 and v["keys"] == 1 for v in claims.values())


def test_exhausted_retries_end_99_then_dlq_replay_pays(fleet: Fleet, tmp_path: Path) -> None:
    ids = clean_claims(tmp_path / "c.jsonl", 10, seed=10)
    stuck = frozenset(ids[3:4])
    fleet.reset(
        Scenario(throttles=(Throttle(status=503, claim_ids=stuck, attempts=100, retry_after=None),))
    )
    result = fleet.run(tmp_path / "c.jsonl", batch_size=10)
    rows = {r["claim_id"]: r for r in fleet.results(result.run_id)}
    assert rows[ids[3]]["status"] == "REJECTED" and rows[ids[3]]["reject_codes"] == ["99"]
    assert rows[ids[3]]["route"] == "HOST_ERROR" and rows[ids[3]]["attempts"] == 5
    assert all(rows[i]["status"] == "PAID" for i in ids if i != ids[3])
    fleet.reset()
    stores = ReplayStores(fleet.runs, fleet.db, context.crosswalk(), vault(fleet.settings),
                          fleet.settings)  # fmt: skip
    new_run, count = replay(stores, result.run_id, send_batch)
    assert new_run and count == 1
    waiter = Waiter(lambda: progress(fleet.runs, fleet.db, new_run), say=lambda line: None)
    done = waiter.wait(60, lambda d, t: None)
    assert done.done == done.total == 1
    (row,) = fleet.results(new_run)
    assert row["claim_id"] == ids[3] and row["status"] == "PAID"


def test_an_incurable_401_storm_opens_the_breaker_then_the_fleet_recovers(
    fleet: Fleet, tmp_path: Path, settings_override: None
) -> None:
    fleet.settings = configure(
        auth_breaker_min_requests=5, breaker_cooldown=0.5, submit_max_retries=30
    )
    clean_claims(tmp_path / "c.jsonl", 80, seed=11)
    fleet.reset(Scenario(storm=Storm(start_after=20, seconds=1.5, error="invalid_token")))
    result = fleet.run(tmp_path / "c.jsonl", batch_size=20)
    assert all(r["status"] == "PAID" for r in fleet.results(result.run_id))
    stats = context.auth_breaker().counters()
    assert stats.get("opened", 0) >= 1 and stats.get("closed", 0) >= 1
