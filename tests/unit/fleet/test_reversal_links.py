"""A reversal (B2) through the links: no crosswalk check, the reversal body, REVERSED or 87."""

from __future__ import annotations

from typing import Any

from config.settings import CONFIG_DIR
from rxfleet.claims import validation
from rxfleet.claims.model import REVERSAL_FIELDS, gateway_body
from rxfleet.claims.rejects import CLEAN, Reason, RejectMatrix, Route, Status
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.links.crosswalk import map_record
from rxfleet.links.route import route_record
from tests.unit.gateway.sandbox_claims import IDENTIFYING as SANDBOX_IDENTIFYING

MATRIX = RejectMatrix.load(CONFIG_DIR / "reject_codes.json")
IDENTIFYING: dict[str, Any] = {"claim_id": "R-1", **SANDBOX_IDENTIFYING}


def _record(transaction_code: str, **claim: Any) -> WorkRecord:
    fields = {**IDENTIFYING, "plan_id": "PLAN-COMM", "transaction_code": transaction_code}
    return WorkRecord(seq=0, source="f", line=1, claim={**fields, **claim})


def _answered(transaction_code: str, status: str, codes: list[str]) -> WorkRecord:
    record = _record(transaction_code)
    record.response_status, record.reject_codes = status, codes
    return record


def test_an_accepted_reversal_is_reversed_clean_payer() -> None:
    record = _answered("B2", "A", [])
    route_record(record, MATRIX)
    assert (record.status, record.route, record.reason) == (Status.REVERSED, CLEAN, Reason.PAYER)


def test_a_refused_reversal_87_is_a_reject_routed_by_the_matrix() -> None:
    record = _answered("B2", "R", ["87"])
    route_record(record, MATRIX)
    assert (record.status, record.route, record.reason) == (
        Status.REJECTED,
        Route.REVIEW_REQUIRED,
        Reason.PAYER,
    )
    assert MATRIX.codes["87"].meaning == "Reversal Not Processed"


def test_a_rebill_paid_is_paid_and_a_billing_approved_is_not_reversed() -> None:
    for code, status in (("B3", "P"), ("B1", "A")):
        record = _answered(code, status, [])
        route_record(record, MATRIX)
        assert (record.status, record.route, record.reason) == (Status.PAID, CLEAN, Reason.PAYER)


def test_a_reversal_body_carries_the_identifying_fields_only() -> None:
    claim = {**IDENTIFYING, "transaction_code": "B2", "plan_id": "PLAN-COMM", "ndc11": None}
    assert gateway_body(claim) == {**IDENTIFYING, "transaction_code": "B2"}
    assert set(REVERSAL_FIELDS) == set(IDENTIFYING)


def test_the_crosswalk_passes_a_reversal_through_without_a_coverage_check() -> None:
    record = _record("B2")
    map_record(record, None)  # no crosswalk entry: a billing would be quarantined
    assert (record.stage, record.issues, record.gpi) == (Stage.MAPPED, [], None)
    billing = _record("B1", quantity_dispensed=30)
    map_record(billing, None)
    assert billing.stage is not Stage.MAPPED


def test_a_reversal_needs_its_identifying_fields_not_the_drug() -> None:
    reversal = {**IDENTIFYING, "plan_id": "PLAN-COMM", "transaction_code": "B2"}
    values, issues = validation._coerce(reversal, frozenset())
    assert issues == []
    assert validation._ndc(reversal, values) == []
    for name, code in validation.BY_TRANSACTION["B2"].required.items():
        _, issues = validation._coerce({**reversal, name: None}, frozenset())
        assert [issue.code for issue in issues] == [code]
    billing = {**reversal, "transaction_code": "B1", "rx_number": None}
    _, issues = validation._coerce(billing, frozenset())
    assert {i.code for i in issues} == {"MISSING_QUANTITY", "MISSING_DAYS_SUPPLY"}
    assert [i.code for i in validation._ndc(billing, {})] == ["MISSING_NDC"]
