"""The sandbox adjudicator's decision table over config/sandbox_plans.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from config.settings import CONFIG_DIR
from rxfleet.errors import ConfigError
from rxfleet.gateway.sandbox.adjudicator import Adjudicator, PlanBook
from tests.unit.gateway.sandbox_claims import PAYABLE

PLANS = PlanBook.load(CONFIG_DIR / "sandbox_plans.json")
CLAIM: dict[str, Any] = {**PAYABLE, "claim_id": "U-1"}


def decide(**overrides: Any) -> tuple[int, dict[str, Any]]:
    answer = Adjudicator(PLANS).adjudicate({**CLAIM, **overrides})
    return answer.status, answer.body


def test_paid_prices_by_tier_and_plan() -> None:
    status, body = decide()
    assert (status, body["transaction_response_status"]) == (200, "P")
    assert body["pricing"] == {  # HDHP tier 2: copay 40
        "ingredient_cost_paid": 80.0,
        "dispensing_fee_paid": 1.75,
        "patient_pay_amount": 40.0,
        "total_amount_paid": 41.75,
    }


def test_patient_never_pays_more_than_the_claim() -> None:
    _, body = decide(ingredient_cost_submitted=3.0, usual_and_customary=2.0)
    assert body["pricing"]["patient_pay_amount"] == 3.75
    assert body["pricing"]["total_amount_paid"] == 0.0


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"group_id": None}, "06"),
        ({"group_id": "PDP001"}, "06"),  # a group of another route
        ({"cardholder_id": "ZT900000001"}, "65"),
        ({"gpi": None}, "70"),
        ({"gpi": "40304080100330"}, "70"),
        ({"gpi": "66270015008030"}, "75"),
        ({"days_supply": 91}, "76"),
        ({"gpi": "57200040100310", "quantity_dispensed": 46, "days_supply": 15}, "76"),
    ],
)
def test_rejects(overrides: dict[str, Any], code: str) -> None:
    status, body = decide(**overrides)
    assert (status, body["transaction_response_status"], body["reject_codes"]) == (
        200,
        "R",
        [code],
    )
    assert set(body) == {"claim_id", "transaction_response_status", "reject_codes"}


def test_unknown_route_and_scenario_routes() -> None:
    assert decide(pcn="OTHER")[0] == 404
    adjudicator = Adjudicator(PLANS)
    assert adjudicator.adjudicate(CLAIM, frozenset({"610014/RXSANDBX"})).status == 404


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"claim_id": None}, "claim_id"),
        ({"ndc": "12345"}, "ndc"),
        ({"bin": "61001A"}, "bin"),
        ({"gpi": "3940"}, "gpi"),
        ({"days_supply": 30.5}, "days_supply"),
        ({"days_supply": "30"}, "days_supply"),
        ({"quantity_dispensed": 0}, "quantity_dispensed"),
        ({"date_of_service": "03/02/2026"}, "date_of_service"),
    ],
)
def test_invalid_requests_name_the_field(overrides: dict[str, Any], field: str) -> None:
    assert decide(**overrides) == (400, {"error": "invalid_request", "field": field})


def test_whole_float_days_supply_is_a_number() -> None:
    assert decide(days_supply=30.0)[1]["transaction_response_status"] == "P"


def test_bad_plan_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        PlanBook.load(tmp_path / "missing.json")
    broken = tmp_path / "plans.json"
    broken.write_text(
        '{"version": "x", "routes": [{"bin": "1", "pcn": "P", "processor": "p",'
        ' "groups": {"G": "NOPLAN"}}], "plans": {}, "formulary": {},'
        ' "members": {}, "pricing": {"dispensing_fee": 1}}'
    )
    with pytest.raises(ConfigError, match="invalid plan file"):
        PlanBook.load(broken)


def test_compound_is_adjudicated_by_its_first_ingredient() -> None:
    items = [
        {"ndc11": "00093721401", "quantity": 15.0, "cost": 60.0},
        {"ndc11": "00002143380", "quantity": 100.0, "cost": 20.0},
    ]
    status, body = decide(compound_ingredients=items)
    assert (status, body["transaction_response_status"]) == (200, "P")
    bad = [{"ndc11": "93721401", "quantity": 15.0, "cost": 60.0}]
    assert decide(compound_ingredients=bad) == (
        400,
        {"error": "invalid_request", "field": "compound_ingredients"},
    )
