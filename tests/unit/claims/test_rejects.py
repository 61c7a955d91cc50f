"""The reject-code matrix (config/reject_codes.json) and routing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from config.settings import CONFIG_DIR
from rxfleet.claims.rejects import (
    CLEAN,
    DEAD_LETTER,
    REVIEW_REQUIRED,
    RejectMatrix,
    normalize_codes,
)

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
        # Issue 11: the set decides, by the matrix's precedence (was: the first code).
        (["07", "75"], "CORRECT_AND_RESUBMIT"),
        (["75", "07"], "CORRECT_AND_RESUBMIT"),
        (["92", "75"], "PRIOR_AUTH"),
        (["75", "92"], "PRIOR_AUTH"),
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


# --- issue 11 --------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rxfleet.claims.rejects import Reason, Route, Status, replayable  # noqa: E402

_MATRIX = RejectMatrix.load(CONFIG_DIR / "reject_codes.json")


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([*sorted(_MATRIX.codes), "XX", "ZZ"]), min_size=1, max_size=6),
       st.randoms(), st.sampled_from([None, "PLAN-PARTD", "PLAN-COMM"]))  # fmt: skip
def test_route_depends_on_the_set_of_codes_not_their_order(
    codes: list[str], rng: object, plan: str | None
) -> None:
    shuffled = list(codes)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert _MATRIX.route_for(codes, plan) == _MATRIX.route_for(shuffled, plan)
    assert _MATRIX.route_for(codes, plan) == _MATRIX.route_for(sorted(set(codes)), plan)


def test_routes_enum_precedence_and_matrix_agree() -> None:
    data = json.loads((CONFIG_DIR / "reject_codes.json").read_text())
    declared = set(data["routes"])
    assert declared == {route.value for route in Route}
    assert set(data["precedence"]) == declared and len(data["precedence"]) == len(declared)
    for code, entry in _MATRIX.codes.items():
        assert entry.route.value in declared, code
        assert _MATRIX.route_for([code]) == entry.route


def test_every_code_has_a_public_source_or_is_flagged() -> None:
    data = json.loads((CONFIG_DIR / "reject_codes.json").read_text())
    sourced = {code for source in data["sources"] for code in source["codes"]}
    unsourced = {code for code, entry in _MATRIX.codes.items() if entry.unsourced}
    assert set(_MATRIX.codes) - sourced == unsourced
    # 90 (Host Hung Up): the RSS list shows a blank where 9Ø would be; not relied on.
    assert unsourced == {"MR", "90", "87"}  # 87 Reversal Not Processed: no public list found
    assert _MATRIX.version == "2026.11.3"


#: (codes, route). Sources: RSS Administrators NCPDP 5.1 rejection code list, the
#: CARIN RTPBC NamingSystem (USHIK copy), EmblemHealth (40 = network matter).
MISSING_BEFORE = [
    (["83"], "DUPLICATE"),
    (["85"], "HOST_ERROR"),
    (["54"], "CORRECT_AND_RESUBMIT"),
    (["R8"], "CORRECT_AND_RESUBMIT"),
    (["81"], "PLAN_LIMITS"),
    (["84"], "REVIEW_REQUIRED"),
    (["40"], "NETWORK"),
    (["40", "01"], "ROUTING_ERROR"),
    (["40", "65"], "NETWORK"),
]


@pytest.mark.parametrize(("codes", "route"), MISSING_BEFORE)
def test_codes_added_in_issue_11(codes: list[str], route: str) -> None:
    assert _MATRIX.route_for(codes) == route


@pytest.mark.parametrize(
    ("codes", "expected"),
    [(["92"], True), (["90", "98"], True), (["92", "75"], False), (["99"], False),
     ([], False), (["XX"], False)],
)  # fmt: skip
def test_transient_means_every_code_is_host_transient(codes: list[str], expected: bool) -> None:
    assert _MATRIX.transient(codes) is expected


#: 112-AN (NCPDP D.0; values per VistA RESPONSES file 9002313.0301).
STATUSES = [
    ("P", Status.PAID, Route.CLEAN),
    ("D", Status.PAID, Route.CLEAN),  # duplicate of paid: the payer already paid it
    ("C", Status.PAID, Route.CLEAN),
    ("Q", Status.PAID, Route.CLEAN),
    ("A", Status.PAID, Route.CLEAN),
    ("S", Status.PAID, Route.CLEAN),
    ("F", Status.REJECTED, Route.PRIOR_AUTH),
    ("R", Status.REJECTED, None),
    ("Z", Status.REJECTED, Route.REVIEW_REQUIRED),
]


@pytest.mark.parametrize(("status", "outcome", "route"), STATUSES)
def test_outcome_for_every_response_status(status: str, outcome: Status, route: Route) -> None:
    got = _MATRIX.outcome_for(status)
    assert (got.status, got.route) == (outcome, route)


REPLAY = [
    (Route.HOST_ERROR, Reason.PAYER, False),  # the payer's own 99: not replayed
    (Route.HOST_ERROR, Reason.RETRIES_EXHAUSTED, True),  # the fleet's "99"
    (Route.RETRY_LATER, Reason.TRANSIENT_EXHAUSTED, True),
    (Route.RETRY_LATER, Reason.PAYER, False),
    (Route.DEAD_LETTER, Reason.ABORTED, True),
    (Route.DEAD_LETTER, Reason.VALIDATION, False),
    (Route.ROUTING_ERROR, Reason.ROUTING_MISS, False),
    (Route.HOST_ERROR, Reason.GATEWAY_REFUSED, False),
    (Route.PRIOR_AUTH, Reason.RETRIES_EXHAUSTED, False),
]


@pytest.mark.parametrize(("route", "reason", "expected"), REPLAY)
def test_replayable_only_for_the_fleets_own_failures(
    route: Route, reason: Reason, expected: bool
) -> None:
    assert replayable(route, reason) is expected


def test_codes_are_trimmed_before_routing(matrix: RejectMatrix) -> None:
    assert matrix.route_for([" 75"]) == matrix.route_for(["75"]) != REVIEW_REQUIRED
    assert matrix.route_for(["75 ", "\t70"]) == matrix.route_for(["70", "75"])
    assert matrix.route_for(["  "]) == REVIEW_REQUIRED  # a blank code is no code


def test_normalize_codes_trims_and_drops_blanks() -> None:
    assert normalize_codes([" 75", "70 ", " ", "", "75"]) == ["75", "70", "75"]
