"""Seed 004's cross-field rules against config/plan_limits.json: WARN, per the table."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from config.settings import CONFIG_DIR
from rxfleet.claims.plans import NO_LIMITS, load_plan_limits
from rxfleet.claims.rules import Severity, rule
from rxfleet.claims.validation import split_phi, validate
from rxfleet.errors import ConfigError
from tests.unit.claims.test_validation import FULL

LIMITS = load_plan_limits(CONFIG_DIR / "plan_limits.json")
TODAY = date(2026, 12, 1)


def _codes(**change: Any) -> list[str]:
    rest, _ = split_phi({**FULL, **change})
    return [i.code for i in validate(rest, today=TODAY, limits=LIMITS).issues]


@pytest.mark.parametrize(
    ("change", "codes"),
    [
        ({"patient_relationship_code": "1", "person_code": "001"}, []),
        ({"patient_relationship_code": "3", "person_code": "003"}, []),
        (
            {"patient_relationship_code": "1", "person_code": "003"},
            ["RELATIONSHIP_MISMATCH"],
        ),
        (
            {"patient_relationship_code": "2", "person_code": "001"},
            ["RELATIONSHIP_MISMATCH"],
        ),
        ({"patient_relationship_code": "0", "person_code": "003"}, []),  # not specified
        ({"plan_id": "PLAN-PARTD", "days_supply": "34"}, []),
        ({"plan_id": "PLAN-PARTD", "days_supply": "35"}, ["DAYS_SUPPLY_OVER_PLAN_MAX"]),
        ({"plan_id": "PLAN-COMM", "days_supply": "91"}, ["DAYS_SUPPLY_OVER_PLAN_MAX"]),
        ({"plan_id": "PLAN-UNLISTED", "days_supply": "200"}, []),
    ],
)
def test_cross_field_rules(change: dict[str, Any], codes: list[str]) -> None:
    assert [c for c in _codes(**change) if c in {"RELATIONSHIP_MISMATCH",
                                                 "DAYS_SUPPLY_OVER_PLAN_MAX"}] == codes  # fmt: skip


def test_the_findings_are_warn_so_the_claim_is_still_sent() -> None:
    rest, _ = split_phi({**FULL, "plan_id": "PLAN-PARTD", "days_supply": "60"})
    outcome = validate(rest, today=TODAY, limits=LIMITS)
    assert outcome.claim is not None and outcome.severity is Severity.WARN
    assert rule("DAYS_SUPPLY_OVER_PLAN_MAX").severity is Severity.WARN
    assert rule("RELATIONSHIP_MISMATCH").severity is Severity.WARN
    assert validate(rest, today=TODAY, limits=NO_LIMITS).severity is Severity.PASS


def test_a_bad_limits_file_is_one_line_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "limits.json"
    path.write_text(json.dumps({"version": "x", "plans": {"P": {"max_days_supply": 0}}}))
    with pytest.raises(ConfigError) as refused:
        load_plan_limits(path)
    assert "plans.P.max_days_supply" in str(refused.value) and "\n" not in str(refused.value)
