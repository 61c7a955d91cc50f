"""The reject-code matrix (config/reject_codes.json) and routing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import CONFIG_DIR
from rxfleet.claims.rejects import CLEAN, DEAD_LETTER, REVIEW_REQUIRED, RejectMatrix

MATRIX_PATH = CONFIG_DIR / "reject_codes.json"
RAW = json.loads(MATRIX_PATH.read_text(encoding="utf-8"))
HOST_RETRYABLE = ["90", "91", "92", "95", "96", "97", "98"]


@pytest.fixture(scope="module")
def matrix() -> RejectMatrix:
    return RejectMatrix.load(MATRIX_PATH)


def test_loads(matrix: RejectMatrix) -> None:
    assert matrix.version == RAW["version"]
    assert set(matrix.codes) == set(RAW["codes"])
    assert matrix.default_route == REVIEW_REQUIRED
    assert {CLEAN, DEAD_LETTER, REVIEW_REQUIRED} <= set(RAW["routes"])


@pytest.mark.parametrize("code", sorted(RAW["codes"]))
def test_every_code_routes_to_a_declared_route(matrix: RejectMatrix, code: str) -> None:
    entry = matrix.codes[code]
    assert entry.route in RAW["routes"]
    assert entry.meaning.strip() and entry.category.strip()
    assert entry.code == code
    assert isinstance(entry.retryable, bool)


def test_plan_overrides_route_to_declared_routes() -> None:
    for overrides in RAW["plan_overrides"].values():
        assert set(overrides.values()) <= set(RAW["routes"])


@pytest.mark.parametrize("code", HOST_RETRYABLE)
def test_host_family_is_retryable(matrix: RejectMatrix, code: str) -> None:
    assert matrix.is_retryable(code)
    assert matrix.route_for([code]) == "RETRY_LATER"


def test_99_is_not_retryable(matrix: RejectMatrix) -> None:
    assert not matrix.is_retryable("99")
    assert matrix.route_for(["99"]) == "HOST_ERROR"


def test_only_the_host_family_is_retryable(matrix: RejectMatrix) -> None:
    assert {c for c, e in matrix.codes.items() if e.retryable} == set(HOST_RETRYABLE)
    assert not matrix.is_retryable("XX")


@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        (["75"], "PRIOR_AUTH"),
        (["79"], "REFILL_TOO_SOON"),
        (["70"], "FORMULARY_EXCEPTION"),
        (["65"], "ELIGIBILITY"),
        (["01"], "ROUTING_ERROR"),
        (["07", "75"], "CORRECT_AND_RESUBMIT"),  # the first known code decides
        (["75", "07"], "PRIOR_AUTH"),
    ],
)
def test_code_route(matrix: RejectMatrix, codes: list[str], expected: str) -> None:
    assert matrix.route_for(codes) == expected
    assert matrix.route_for(codes, "PLAN-COMM") == expected  # no override for this plan


def test_plan_override_beats_code_route(matrix: RejectMatrix) -> None:
    assert matrix.route_for(["70"]) == "FORMULARY_EXCEPTION"
    assert matrix.route_for(["70"], "PLAN-PARTD") == REVIEW_REQUIRED
    assert matrix.route_for(["70", "75"], "PLAN-PARTD") == REVIEW_REQUIRED


def test_override_beats_route_with_a_custom_matrix(tmp_path: Path) -> None:
    data = {**RAW, "plan_overrides": {"P1": {"79": "DUR_REVIEW"}}}
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    custom = RejectMatrix.load(path)
    assert custom.route_for(["79"], "P1") == "DUR_REVIEW"
    assert custom.route_for(["79"], "P2") == "REFILL_TOO_SOON"
    assert custom.route_for(["79"]) == "REFILL_TOO_SOON"


@pytest.mark.parametrize(
    "codes", [["ZZ"], ["A1"], [""], ["75", "ZZ"], ["ZZ", "75"], ["79", "70", "Q9"]]
)
def test_unknown_code_needs_review(matrix: RejectMatrix, codes: list[str]) -> None:
    assert matrix.route_for(codes) == REVIEW_REQUIRED
    assert matrix.route_for(codes, "PLAN-PARTD") == REVIEW_REQUIRED


def test_no_codes_needs_review(matrix: RejectMatrix) -> None:
    assert matrix.route_for([]) == REVIEW_REQUIRED


def test_default_route_comes_from_the_file(tmp_path: Path) -> None:
    data = {k: v for k, v in RAW.items() if k != "plan_overrides"}
    data["default_route"] = "HOST_ERROR"
    path = tmp_path / "matrix.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    custom = RejectMatrix.load(path)
    assert custom.plan_overrides == {}
    assert custom.route_for(["ZZ"]) == "HOST_ERROR"
