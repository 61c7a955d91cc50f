"""A payer's odd answers on the real fleet: a ``P`` that carries reject codes, and a
reject code padded with spaces. The sandbox answers them as told (``Scenario.answers``);
each claim routes by its codes, trimmed, whatever its status letter."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import get_settings
from rxfleet.claims.rejects import matrix
from rxfleet.gateway.sandbox.scenario import Override, Scenario
from tests.integration.fleet.fleet_support import Fleet
from tests.integration.fleet.test_gateway_faults import clean_claims

pytestmark = pytest.mark.integration


def test_a_paid_letter_with_codes_and_padded_codes_route_by_their_codes(
    fleet: Fleet, tmp_path: Path
) -> None:
    ids = clean_claims(tmp_path / "c.jsonl", 20, seed=16)
    odd = (
        Override(claim_ids=frozenset({ids[3]}), status="P", reject_codes=("75",)),
        Override(claim_ids=frozenset({ids[5]}), status="R", reject_codes=(" 75 ",)),
    )
    fleet.reset(Scenario(answers=odd))
    rows = {r["claim_id"]: r for r in fleet.results(fleet.run(tmp_path / "c.jsonl").run_id)}
    expected = matrix(get_settings().reject_matrix).route_for(["75"], None)
    for claim_id in (ids[3], ids[5]):
        row = rows[claim_id]
        assert row["status"] == "REJECTED" and row["reject_codes"] == ["75"], row
        assert row["route"] == expected and expected not in ("CLEAN", "REVIEW_REQUIRED"), row
        assert row["reason"] == "PAYER", row
    others = [r for k, r in rows.items() if k not in (ids[3], ids[5])]
    assert len(others) == 18 and all(r["status"] == "PAID" for r in others)


def test_an_answer_naming_another_claim_is_a_gateway_fault_never_recorded_against_it(
    fleet: Fleet, tmp_path: Path
) -> None:
    ids = clean_claims(tmp_path / "m.jsonl", 12, seed=22)
    mixed = Override(claim_ids=frozenset({ids[2], ids[4]}), status="P", answer_for=ids[7])
    fleet.reset(Scenario(answers=(mixed,)))
    rows = {r["claim_id"]: r for r in fleet.results(fleet.run(tmp_path / "m.jsonl").run_id)}
    for claim_id in (ids[2], ids[4]):
        row = rows[claim_id]
        assert (row["status"], row["reject_codes"], row["reason"]) == (
            "REJECTED",
            ["99"],
            "ANSWER_MISMATCH",
        ), row
        assert row["amount_paid"] is None and row["authorization_number"] is None, row
        assert row["attempts"] > 1, row  # tried again before giving up
    assert rows[ids[7]]["status"] == "PAID" and rows[ids[7]]["reason"] == "PAYER"
    assert sum(r["status"] == "PAID" for r in rows.values()) == 10
