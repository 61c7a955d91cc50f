"""The whole chain on real parts: private Redis, a real Celery worker, the sandbox over HTTP."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from rxfleet.claims.ndc import normalize_ndc
from tests.integration.fleet.fleet_support import SAMPLE, Fleet
from tests.integration.fleet.sample_facts import read_sample

pytestmark = pytest.mark.integration


SampleRun = tuple[str, list[dict[str, Any]], dict[str, Any]]


@pytest.fixture(scope="module")
def sample_run(fleet: Fleet) -> SampleRun:
    fleet.reset()
    result = fleet.run(SAMPLE, batch_size=100)
    return result.run_id, fleet.results(result.run_id), fleet.gateway.stats()


def test_every_claim_ends_exactly_once_in_input_order(sample_run: SampleRun, fleet: Fleet) -> None:
    run_id, results, _ = sample_run
    facts = read_sample(SAMPLE)
    assert len(results) == facts.lines
    salvaged = [r["claim_id"] for r in results]
    expected = [cid if cid else salvaged[i] for i, cid in enumerate(facts.claim_ids)]
    assert salvaged == expected
    assert {r["status"] for r in results} == {"PAID", "REJECTED", "QUARANTINED"}
    assert sum(fleet.db.counts(run_id).values()) == facts.lines


def test_no_claim_is_adjudicated_twice(sample_run: SampleRun) -> None:
    _, results, stats = sample_run
    per_claim = stats["claims"]  # one submission per claim: one key, adjudicated once
    assert all(v["adjudications"] <= 1 and v["keys"] == 1 for v in per_claim.values())
    assert stats["same_content"] == 0
    sent = [r for r in results if r["status"] != "QUARANTINED" and r["reject_codes"] != ["04"]]
    assert stats["adjudications"] == len({r["claim_id"] for r in sent})


def test_paid_claims_carry_ndc11_gpi_and_token(sample_run: SampleRun) -> None:
    _, results, _ = sample_run
    facts = read_sample(SAMPLE)
    paid = [r for r in results if r["status"] == "PAID"]
    assert paid
    for row in paid:
        claim = facts.claims[str(row["claim_id"])]
        assert row["ndc11"] == normalize_ndc(claim["ndc"])
        assert isinstance(row["gpi"], str) and len(row["gpi"]) == 14
        assert str(row["patient_token"]).startswith("pt_")
        assert row["route"] == "CLEAN" and row["reject_codes"] == [] and row["attempts"] == 1


@pytest.mark.parametrize(
    ("ndc", "code", "route"),
    [
        ("00074-4339-02", "75", "PRIOR_AUTH"),
        ("00169-4132-12", "76", "PLAN_LIMITS"),
    ],
)
def test_payer_rejections_route_by_the_matrix(
    sample_run: SampleRun, ndc: str, code: str, route: str
) -> None:
    _, results, _ = sample_run
    ids = set(read_sample(SAMPLE).with_ndc(ndc))
    rows = [r for r in results if r["claim_id"] in ids and r["status"] != "QUARANTINED"]
    assert rows
    assert all(r["status"] == "REJECTED" and r["reject_codes"] == [code] for r in rows)
    assert all(r["route"] == route for r in rows)


def test_unknown_route_costs_one_request_not_one_per_claim(sample_run: SampleRun) -> None:
    _, results, stats = sample_run
    facts = read_sample(SAMPLE)
    misses = [r for r in results if facts.claims.get(str(r["claim_id"]), {}).get("bin") == "777777"]
    misses = [r for r in misses if r["status"] != "QUARANTINED"]
    assert len(misses) > 1
    assert all(r["reject_codes"] == ["04"] and r["route"] == "ROUTING_ERROR" for r in misses)
    requests_404 = [e for e in stats["log"] if e["status"] == 404]
    assert len(requests_404) == 1
    assert sum(r["attempts"] for r in misses) == 1


def test_malformed_claims_are_quarantined_with_their_code(
    sample_run: SampleRun, fleet: Fleet
) -> None:
    run_id, results, _ = sample_run
    quarantined = [r for r in results if r["status"] == "QUARANTINED"]
    codes = Counter(code for r in quarantined for code in r["errors"])
    for code in (
        "MALFORMED_RECORD",
        "ERR_AMBIGUOUS_NDC",
        "MISSING_PLAN_ID",
        "INVALID_POS",
        "MISSING_GPI_MAPPING",
        "DUPLICATE_CLAIM_ID",
        "INVALID_PRESCRIBER_NPI",
    ):
        assert codes[code] >= 1, code
    assert all(r["route"] == "DEAD_LETTER" and r["severity"] == "FATAL" for r in quarantined)
    assert all(r["attempts"] == 0 for r in quarantined)
    entries, _ = fleet.db.dead_letters(run_id, limit=10_000)
    mine = [e for e in entries if e["route"] == "DEAD_LETTER"]
    assert len(mine) == len(quarantined)
    assert all(e["source"].endswith("claims.jsonl") and e["line"] >= 1 for e in mine)
    assert all(e["field"] or e["codes"][0] == "MALFORMED_RECORD" for e in mine)


def test_warnings_are_sent_and_flagged(sample_run: SampleRun) -> None:
    _, results, _ = sample_run
    warned = [r for r in results if r["severity"] == "WARN"]
    assert {"OBSOLETE_NDC", "STEP_THERAPY_FLAG"} <= {c for r in warned for c in r["errors"]}
    assert all(r["status"] in {"PAID", "REJECTED"} for r in warned)


def test_audit_trail_has_every_stage_for_a_paid_claim(sample_run: SampleRun, fleet: Fleet) -> None:
    run_id, results, _ = sample_run
    paid = next(r for r in results if r["status"] == "PAID")
    events = fleet.audit(run_id)
    stages = [e["stage"] for e in events if e["claim_id"] == paid["claim_id"]]
    assert stages == ["ingested", "validated", "mapped", "attempt", "sent", "routed", "recorded"]
    recorded = [e for e in events if e["stage"] == "recorded"]
    assert len(recorded) == len(results)
    assert all(len(e["payload_hash"]) == 64 for e in recorded)
