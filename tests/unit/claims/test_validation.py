"""Validation: one case per rule code that ``validate`` or ``check_phi`` can raise."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxfleet.claims.dates import parse_date
from rxfleet.claims.fields import PHI_FIELDS
from rxfleet.claims.model import Claim
from rxfleet.claims.rules import RULES, Severity
from rxfleet.claims.validation import (
    Issue,
    Outcome,
    check_phi,
    npi_is_valid,
    split_phi,
    validate,
)

TODAY = date(2026, 11, 20)

#: Only the fields JSON/CSV/Parquet require.
MINIMAL: dict[str, Any] = {
    "claim_id": "RX00000001",
    "bin": "610014",
    "pcn": "RXSANDBX",
    "cardholder_id": "ZH123456789",
    "date_of_service": "2026-11-01",
    "ndc": "0071-0155-23",
    "quantity_dispensed": "30",
    "days_supply": "30",
    "plan_id": "PLAN-COMM",
}

#: Every canonical field, each valid.
FULL: dict[str, Any] = {
    **MINIMAL,
    "group_id": "GRP100",
    "patient_first_name": "AVA",
    "patient_last_name": "QUILLFEATHER",
    "date_of_birth": "1980-02-25",
    "service_provider_id": "1871523647",
    "rx_number": "1234567",
    "fill_number": "2",
    "prescriber_id": "1234567893",
    "ingredient_cost_submitted": "57.10",
    "usual_and_customary": "100.00",
    "pos": "01",
}


def _all_issues(fields: dict[str, Any]) -> list[Issue]:
    """What the producer (check_phi) and the validate link (validate) say together."""
    rest, _ = split_phi(fields)
    return check_phi(fields, today=TODAY) + list(validate(rest, today=TODAY).issues)


@dataclass(frozen=True)
class Case:
    code: str
    change: dict[str, Any]  # field -> new value; None drops the field
    base: dict[str, Any]

    def fields(self) -> dict[str, Any]:
        fields = dict(self.base)
        for name, value in self.change.items():
            if value is None:
                fields.pop(name, None)
            else:
                fields[name] = value
        return fields


def _c(code: str, base: dict[str, Any] = FULL, **change: Any) -> Case:
    return Case(code, change, base)


_DROP = None
CASES: list[Case] = [
    _c("UNEXPECTED_FIELD", member_ssn="123-45-6789"),
    _c("MISSING_CLAIM_ID", claim_id=_DROP),
    _c("MISSING_CLAIM_ID", claim_id="   "),
    _c("INVALID_CLAIM_ID", claim_id="RX 0001"),
    _c("INVALID_CLAIM_ID", claim_id="R" * 65),
    _c("MISSING_BIN", bin=""),
    _c("INVALID_BIN", bin="61001X"),
    _c("INVALID_BIN", bin="6100141"),
    _c("INVALID_BIN", bin="\uff16\uff11\uff10\uff10\uff11\uff14"),  # FULLWIDTH digits
    _c("MISSING_PCN", pcn=_DROP),
    _c("INVALID_PCN", pcn="RX SANDBOX"),
    _c("INVALID_PCN", pcn="RXSANDBOX12"),
    _c("INVALID_GROUP_ID", group_id="G" * 16),
    _c("MISSING_PLAN_ID", plan_id=_DROP),
    _c("INVALID_PLAN_ID", plan_id="P" * 65),
    _c("INVALID_PERSON_CODE", person_code="0001"),
    _c("INVALID_PERSON_CODE", person_code="0 1"),
    _c("INVALID_RELATIONSHIP_CODE", patient_relationship_code="5"),
    _c("INVALID_COMPOUND", compound_ingredients=[{"ndc": "0071015523", "quantity": "1"}]),
    _c("INVALID_COMPOUND", compound_ingredients=[{"ndc": "00071015523", "quantity": "0"}]),
    _c("INVALID_COMPOUND", compound_ingredients="00071015523"),
    _c("INVALID_POS", pos="1A"),
    _c("INVALID_POS", pos="1"),
    _c("INVALID_TRANSACTION_CODE", transaction_code="B4"),
    _c("INVALID_TRANSACTION_CODE", transaction_code="E1"),
    _c("INVALID_TRANSACTION_CODE", transaction_code="b1"),
    _c("MISSING_CARDHOLDER_ID", cardholder_id=_DROP),
    _c("MISSING_CARDHOLDER_ID", cardholder_id=" "),
    _c("INVALID_CARDHOLDER_ID", cardholder_id="ZH" + "9" * 19),
    _c("INVALID_DATE_OF_BIRTH", date_of_birth="1980-02-30"),
    _c("INVALID_DATE_OF_BIRTH", date_of_birth="25/02/1980"),
    _c("DATE_OF_BIRTH_IN_FUTURE", date_of_birth="2026-11-21"),
    _c("MISSING_DATE_OF_SERVICE", date_of_service=_DROP),
    _c("INVALID_DATE_OF_SERVICE", date_of_service="2026-02-30"),
    _c("INVALID_DATE_OF_SERVICE", date_of_service="11/01/2026"),
    _c("INVALID_DATE_OF_SERVICE", date_of_service="\u0662\u0660\u0662\u0666" + "1101"),
    _c("DATE_OF_SERVICE_IN_FUTURE", date_of_service="2026-11-21"),
    _c("SERVICE_BEFORE_BIRTH", date_of_birth="2026-11-02"),
    _c("INVALID_SERVICE_PROVIDER_ID", service_provider_id="12345"),
    _c("INVALID_SERVICE_PROVIDER_ID", service_provider_id="187152364X"),
    _c("INVALID_RX_NUMBER", rx_number="RX123"),
    _c("INVALID_RX_NUMBER", rx_number="1" * 13),
    _c("INVALID_RX_NUMBER", rx_number="RX1001"),  # 402-D2 is 9(12) outside X12
    _c("INVALID_FILL_NUMBER", fill_number="100"),
    _c("INVALID_FILL_NUMBER", fill_number="-1"),
    _c("INVALID_FILL_NUMBER", fill_number="1.5"),
    _c("INVALID_PRESCRIBER_NPI", prescriber_id="1234567890"),
    _c("INVALID_PRESCRIBER_NPI", prescriber_id="123456789"),
    _c("INVALID_PRESCRIBER_NPI", prescriber_id="\u0661234567893"[:10]),
    _c("MISSING_NDC", ndc=_DROP),
    _c("ERR_INVALID_NDC_FORMAT", ndc="0071-01552-3"),
    _c("ERR_INVALID_NDC_FORMAT", ndc="00000000000"),
    _c("ERR_AMBIGUOUS_NDC", ndc="0071015523"),
    _c("MISSING_QUANTITY", quantity_dispensed=_DROP),
    _c("INVALID_QUANTITY", quantity_dispensed="thirty"),
    _c("INVALID_QUANTITY", quantity_dispensed="NaN"),
    _c("INVALID_QUANTITY", quantity_dispensed="Infinity"),
    _c("INVALID_QUANTITY", quantity_dispensed=True),
    _c("INVALID_QUANTITY", quantity_dispensed="\u0663\u0660"),  # Decimal() reads these
    _c("NON_POSITIVE_QUANTITY", quantity_dispensed="0"),
    _c("NON_POSITIVE_QUANTITY", quantity_dispensed=-30),
    _c("MISSING_DAYS_SUPPLY", days_supply=""),
    _c("INVALID_DAYS_SUPPLY", days_supply="30.5"),
    _c("INVALID_DAYS_SUPPLY", days_supply="a month"),
    _c("DAYS_SUPPLY_OUT_OF_RANGE", days_supply="0"),
    _c("DAYS_SUPPLY_OUT_OF_RANGE", days_supply=366),
    # Found by bench/fuzz.py: int(Decimal("1e999999")) took 30 s per claim.
    _c("DAYS_SUPPLY_OUT_OF_RANGE", days_supply="1e999999"),
    _c("INVALID_FILL_NUMBER", fill_number="-9e99999999"),
    _c("INVALID_AMOUNT", ingredient_cost_submitted="57.105"),
    _c("INVALID_AMOUNT", usual_and_customary="a lot"),
    _c("NEGATIVE_AMOUNT", ingredient_cost_submitted="-4.50"),
    _c("NEGATIVE_AMOUNT", usual_and_customary=-1),
    _c("QUANTITY_OUT_OF_RANGE", quantity_dispensed="1e999999999"),
    _c("QUANTITY_OUT_OF_RANGE", quantity_dispensed="10000000"),
    _c("AMOUNT_OUT_OF_RANGE", ingredient_cost_submitted="1000000.00"),
    _c("AMOUNT_OUT_OF_RANGE", usual_and_customary="1E+7"),
    _c("MALFORMED_RECORD", patient_token=12345),
    # Issue 11: bounds and leniency.
    # 442-E7 Quantity Dispensed is 9(7)v999 (NCPDP D.0 Data Dictionary): 3 decimals.
    _c("QUANTITY_TOO_PRECISE", quantity_dispensed="1.2345"),
    # DOS before 2000-01-01 (HIPAA 2000 final rule, first NCPDP standard): a typo.
    _c("DATE_OF_SERVICE_TOO_OLD", MINIMAL, date_of_service="1850-01-01"),
    _c("DATE_OF_SERVICE_TOO_OLD", date_of_service="1999-12-31"),
    # Age at DOS above 122 years (longest verified life): a typo.
    _c("DATE_OF_BIRTH_TOO_OLD", date_of_birth="1900-01-01"),
    _c("DATE_OF_BIRTH_TOO_OLD", date_of_birth="1850-01-01"),
    _c("ERR_INVALID_NDC_LABELER", ndc="00000-1234-56"),
    # 466-EZ Prescriber ID Qualifier (NCPDP D.0): 01 NPI, 12 DEA, others format only.
    _c("INVALID_PRESCRIBER_ID_QUALIFIER", prescriber_id_qualifier="1"),
    _c("INVALID_PRESCRIBER_DEA", prescriber_id_qualifier="12", prescriber_id="AB1234564"),
    _c("INVALID_PRESCRIBER_DEA", prescriber_id_qualifier="12", prescriber_id="1234567893"),
    _c("INVALID_PRESCRIBER_NPI", prescriber_id_qualifier="01", prescriber_id="AB1234563"),
    _c("INVALID_PRESCRIBER_ID", prescriber_id_qualifier="08", prescriber_id="LIC 123"),
    _c("INVALID_AMOUNT", gross_amount_due="1.234"),
    _c("INVALID_UNIT_OF_MEASURE", unit_of_measure="ME"),  # not in the table: the schema's last word
    # The same rules from the minimal claim, for the required fields.
    _c("MISSING_BIN", MINIMAL, bin=_DROP),
    _c("MISSING_NDC", MINIMAL, ndc=" "),
    _c("INVALID_POS", MINIMAL, pos="001"),
]

#: Codes neither validate nor check_phi produces: reader problems, the producer's
#: duplicate check and the crosswalk link's codes (each tested where it is made).
ELSEWHERE = {
    "DUPLICATE_CLAIM_ID",
    "DUPLICATE_FIELD",  # the JSONL reader (tests/unit/formats)
    "NO_PAYER_ROUTE",
    "MISSING_FIELD",
    "INVALID_FIELD",
    "TRUNCATED_HEADER",
    "UNSUPPORTED_VERSION",
    "UNSUPPORTED_TRANSACTION",
    "UNKNOWN_SEGMENT",
    "MALFORMED_SEGMENT",
    "MALFORMED_FIELD",
    "MISSING_SEGMENT",
    "PRODUCT_NOT_NDC",
    "TRANSACTION_COUNT_MISMATCH",
    "SEGMENT_OUTSIDE_GROUP",
    "REPEATED_FIELD",
    "UNIT_NOT_CONVERTIBLE",
    "SEGMENT_COUNT_MISMATCH",
    "CONTROL_NUMBER_MISMATCH",
    "GROUP_COUNT_MISMATCH",
    "MISSING_TRAILER",
    "CONTROL_CHARACTER",  # intake (rxfleet/producer.py)
    "FIELD_COUNT_MISMATCH",  # the CSV reader
    "UNRECORDABLE_VALUE",  # the record link
    "MISSING_GPI_MAPPING",
    "FORMULARY_PENDING",  # the crosswalk link: tests/unit/fleet/test_formulary_link.py
    "RELATIONSHIP_MISMATCH",  # with plan limits: tests/unit/claims/test_plans.py
    "DAYS_SUPPLY_OVER_PLAN_MAX",
    "OBSOLETE_NDC",
    "PRIOR_AUTH_FLAG",
    "QUANTITY_LIMIT_FLAG",
    "STEP_THERAPY_FLAG",
    # validate makes these for a reversal (B2): tested in tests/unit/fleet/test_reversal_links.py
    # until transaction_code is a canonical intake field (then: cases here).
    "MISSING_SERVICE_PROVIDER_ID",
    "MISSING_RX_NUMBER",
    "MISSING_FILL_NUMBER",
}


def _id(case: Case) -> str:
    return f"{case.code}-{'min' if case.base is MINIMAL else 'full'}-{sorted(case.change)}"


def test_every_rule_has_a_case_or_is_made_elsewhere() -> None:
    covered = {case.code for case in CASES}
    assert covered | ELSEWHERE == set(RULES)
    assert not covered & ELSEWHERE


@pytest.mark.parametrize("base", [MINIMAL, FULL], ids=["minimal", "full"])
def test_valid_claim_passes(base: dict[str, Any]) -> None:
    assert check_phi(base, today=TODAY) == []
    rest, _phi = split_phi(base)
    outcome = validate(rest, today=TODAY)
    assert outcome.issues == ()
    assert outcome.severity is Severity.PASS
    assert isinstance(outcome.claim, Claim)
    assert outcome.claim.ndc11 == "00071015523"
    assert outcome.claim.quantity_dispensed == Decimal("30")
    assert outcome.claim.days_supply == 30
    assert outcome.claim.date_of_service == date(2026, 11, 1)
    assert not set(PHI_FIELDS) & set(outcome.claim.model_dump())


def test_plan_id_from_legal_maxima_fits() -> None:
    # issue 16: a 10-character PCN and a 15-character group give a 33-character
    # derived plan id: legal, never MISSING_PLAN_ID.
    plan = f"610014-{'P' * 10}-{'G' * 15}"
    outcome = validate({**split_phi(FULL)[0], "plan_id": plan}, today=TODAY)
    assert outcome.issues == () and outcome.claim is not None
    assert outcome.claim.plan_id == plan


def test_x12_rx_number_is_alphanumeric_1_to_50() -> None:
    rest = split_phi(FULL)[0]
    for rx in ("RX1001", "A", "R" * 50, "RX-1001/2"):
        outcome = validate({**rest, "rx_number": rx}, today=TODAY, fmt="x12")
        assert outcome.issues == () and outcome.claim is not None, rx
        assert outcome.claim.rx_number == rx
    for bad in ("R" * 51, "RX\x011"):
        codes = [
            i.code for i in validate({**rest, "rx_number": bad}, today=TODAY, fmt="x12").issues
        ]
        assert codes == ["INVALID_RX_NUMBER"], bad
    ncpdp = validate({**rest, "rx_number": "RX1001"}, today=TODAY, fmt="ncpdp")
    assert [i.code for i in ncpdp.issues] == ["INVALID_RX_NUMBER"]  # 402-D2 stays 9(12)


def test_compound_ingredients_are_normalized_and_sent() -> None:
    items = [
        {"ndc": "0071-0155-23", "quantity": Decimal("30.5"), "cost": Decimal("12.25")},
        {"ndc": "00002143380", "quantity": "100", "cost": "0"},
    ]
    outcome = validate({**split_phi(FULL)[0], "compound_ingredients": items}, today=TODAY)
    assert outcome.issues == () and outcome.claim is not None
    body = outcome.claim.gateway_fields()
    assert body["compound_ingredients"] == [
        {"ndc11": "00071015523", "quantity": 30.5, "cost": 12.25},
        {"ndc11": "00002143380", "quantity": 100.0, "cost": 0.0},
    ]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_one_mutation_gives_exactly_its_code(case: Case) -> None:
    fields = case.fields()
    issues = _all_issues(fields)
    codes = [issue.code for issue in issues]
    assert codes == [case.code], codes
    issue = issues[0]
    assert issue.severity is RULES[case.code].severity
    if RULES[case.code].field is not None:
        assert issue.field == RULES[case.code].field
    for name, value in case.change.items():
        if isinstance(value, str) and value.strip():
            assert value.strip() not in issue.message  # no value in a message, ever
        elif value is None and case.code not in ("MISSING_CARDHOLDER_ID",):
            assert issue.field == name
    rest, _ = split_phi(fields)
    outcome = validate(rest, today=TODAY)
    if outcome.issues:
        assert outcome.claim is None  # every validate code is FATAL: no claim
        assert outcome.severity is Severity.FATAL


def test_issues_accumulate_and_the_most_severe_wins() -> None:
    fields = {**FULL, "bin": "X", "ndc": "0071015523", "days_supply": "0", "pos": "1A"}
    rest, _ = split_phi(fields)
    outcome = validate(rest, today=TODAY)
    assert {i.code for i in outcome.issues} == {
        "INVALID_BIN",
        "ERR_AMBIGUOUS_NDC",
        "DAYS_SUPPLY_OUT_OF_RANGE",
        "INVALID_POS",
    }
    assert outcome.severity is Severity.FATAL
    warn = Issue.of("OBSOLETE_NDC")
    fatal = Issue.of("MISSING_NDC")
    assert Outcome(None, (warn,)).severity is Severity.WARN
    assert Outcome(None, (warn, fatal)).severity is Severity.FATAL
    assert Outcome(None, (fatal, warn)).severity is Severity.FATAL
    assert Outcome(None, ()).severity is Severity.PASS


def test_issue_of_takes_the_table_field_and_meaning() -> None:
    issue = Issue.of("INVALID_BIN")
    assert (issue.field, issue.message) == ("bin", RULES["INVALID_BIN"].meaning)
    assert Issue.of("INVALID_AMOUNT", "usual_and_customary").field == "usual_and_customary"
    with pytest.raises(KeyError):
        Issue.of("NOT_A_CODE")


def test_values_never_appear_in_messages() -> None:
    secret = "Q7Z9SECRET"
    fields = {
        **FULL,
        "claim_id": f"{secret} !",
        "bin": secret,
        "pcn": f"{secret} {secret}",
        "pos": secret,
        "rx_number": secret,
        "prescriber_id": secret,
        "service_provider_id": secret,
        "ndc": secret,
        "quantity_dispensed": secret,
        "days_supply": secret,
        "fill_number": secret,
        "ingredient_cost_submitted": secret,
        "usual_and_customary": secret,
        "date_of_service": secret,
        "date_of_birth": secret,
        "cardholder_id": secret * 3,
        secret.lower(): secret,
    }
    issues = _all_issues(fields)
    assert len(issues) >= 15
    assert all(secret not in issue.message for issue in issues)


# --- today is injectable -----------------------------------------------------------


def test_today_decides_what_is_in_the_future() -> None:
    fields = {**FULL, "date_of_service": "2026-12-01", "date_of_birth": "2026-11-25"}
    assert {i.code for i in check_phi(fields, today=TODAY)} == {"DATE_OF_BIRTH_IN_FUTURE"}
    assert check_phi(fields, today=date(2026, 12, 1)) == []
    rest, _ = split_phi(fields)
    assert [i.code for i in validate(rest, today=TODAY).issues] == ["DATE_OF_SERVICE_IN_FUTURE"]
    assert validate(rest, today=date(2026, 12, 1)).issues == ()
    assert validate(rest, today=date(2026, 12, 2)).severity is Severity.PASS


def test_service_on_the_birthday_and_today_are_fine() -> None:
    fields = {**FULL, "date_of_service": TODAY.isoformat(), "date_of_birth": TODAY.isoformat()}
    assert _all_issues(fields) == []


def test_birth_rules_need_a_readable_service_date() -> None:
    fields = {**FULL, "date_of_service": "not a date", "date_of_birth": "1980-01-01"}
    assert [i.code for i in check_phi(fields, today=TODAY)] == []


# --- value forms ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("date_of_service", "20261101"),  # NCPDP / X12 CCYYMMDD
        ("date_of_service", date(2026, 11, 1)),  # Parquet date32
        ("quantity_dispensed", 30),
        ("quantity_dispensed", 30.0),
        ("quantity_dispensed", "0.5"),
        ("quantity_dispensed", Decimal("30.000")),  # NCPDP implied decimals
        ("days_supply", 30),
        ("days_supply", "30.0"),
        ("fill_number", 0),
        ("fill_number", "99"),
        ("ingredient_cost_submitted", "0"),
        ("ingredient_cost_submitted", 57.1),
        ("ingredient_cost_submitted", Decimal("57.10")),
        ("service_provider_id", "1234567"),  # NCPDP provider id: 7 digits
        ("pos", " 01 "),
        ("group_id", _DROP),
        ("prescriber_id", ""),
    ],
)
def test_accepted_forms(name: str, value: Any) -> None:
    assert _all_issues(Case("", {name: value}, FULL).fields()) == []


def test_the_claim_keeps_normalized_types() -> None:
    rest, _ = split_phi({**FULL, "fill_number": 3.0, "quantity_dispensed": "7.5"})
    claim = validate({**rest, "patient_token": "pt_abc"}, today=TODAY).claim
    assert claim is not None
    assert claim.fill_number == 3 and isinstance(claim.fill_number, int)
    assert claim.quantity_dispensed == Decimal("7.5")
    assert claim.patient_token == "pt_abc"
    assert claim.gateway_fields()["ndc"] == "00071015523"


def test_parse_date() -> None:
    assert parse_date("2026-11-01") == date(2026, 11, 1)
    assert parse_date(" 20261101 ") == date(2026, 11, 1)
    for bad in ("2026-1-01", "261101", "2026/11/01", "", "2026-11-01T00:00"):
        with pytest.raises(ValueError):
            parse_date(bad)


def test_parse_date_refuses_iso_week_dates() -> None:
    with pytest.raises(ValueError):
        parse_date("2026-W01-1")


@pytest.mark.parametrize("name", ["date_of_service", "date_of_birth"])
def test_datetime_values_are_read_as_their_date(name: str) -> None:
    fields = {**FULL, name: datetime(1990 if name == "date_of_birth" else 2026, 11, 1, 8, 30)}
    assert _all_issues(fields) == []


# --- NPI -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "npi",
    ["1234567893", "1122333341", "1987654328", "1003000126", "1871523647", "1437156189",
     "1588667638", "1245319599"],
)  # fmt: skip
def test_known_valid_npis(npi: str) -> None:
    assert npi_is_valid(npi)


@pytest.mark.parametrize(
    "npi",
    ["1234567890", "1234567894", "2134567893", "123456789", "12345678930", "123456789X",
     "", "0000000000", "1234 67893"],
)  # fmt: skip
def test_invalid_npis(npi: str) -> None:
    assert not npi_is_valid(npi)


def _luhn_check_digit(nine: str) -> str:
    """The NPI check digit of the first nine digits (prefix 80840, Luhn)."""
    for digit in "0123456789":
        if npi_is_valid(nine + digit):
            return digit
    raise AssertionError("no check digit")


@settings(max_examples=100, deadline=None)
@given(st.text(st.sampled_from("0123456789"), min_size=9, max_size=9))
def test_exactly_one_check_digit_per_npi_and_single_errors_are_caught(nine: str) -> None:
    check = _luhn_check_digit(nine)
    assert sum(npi_is_valid(nine + d) for d in "0123456789") == 1
    npi = nine + check
    for position in range(10):
        for digit in "0123456789":
            if digit != npi[position]:
                assert not npi_is_valid(npi[:position] + digit + npi[position + 1 :])


# --- PHI split ---------------------------------------------------------------------


def test_split_phi() -> None:
    fields = {**FULL, "date_of_birth": date(1980, 2, 25), "patient_first_name": "  "}
    rest, phi = split_phi(fields)
    assert set(phi) == set(PHI_FIELDS)
    assert not set(PHI_FIELDS) & set(rest)
    assert phi == {
        "cardholder_id": "ZH123456789",
        "patient_first_name": None,
        "patient_last_name": "QUILLFEATHER",
        "date_of_birth": "1980-02-25",
    }
    assert rest == {k: v for k, v in fields.items() if k not in PHI_FIELDS}


CheckFn = Callable[[dict[str, Any]], object]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*sorted(FULL), "patient_token", "extra"]),
        st.one_of(
            st.none(),
            st.text(max_size=12),
            st.integers(),
            st.floats(allow_nan=True),
            st.booleans(),
            st.decimals(allow_nan=False, allow_infinity=False),
            st.dates(),
        ),
    )
)
def test_arbitrary_fields_give_results_not_exceptions(fields: dict[str, Any]) -> None:
    issues = check_phi(fields, today=TODAY)
    rest, _ = split_phi(fields)
    outcome = validate(rest, today=TODAY)
    assert all(issue.code in RULES for issue in [*issues, *outcome.issues])
    assert (outcome.claim is None) == (outcome.severity is Severity.FATAL)


# --- issue 11: qualifiers, bounds, optional fields -----------------------------------

#: (fields changed from FULL, expected prescriber fields on the claim). Sources:
#: NCPDP D.0 466-EZ code list (01 NPI, 12 DEA, 08 state license); DEA check digit:
#: (d1+d3+d5) + 2*(d2+d4+d6), last digit == d7 (DEA registration number format).
PRESCRIBER_PASSES = [
    ({}, ("1234567893", None)),  # no qualifier: NPI, as before
    ({"prescriber_id_qualifier": "01"}, ("1234567893", "01")),
    ({"prescriber_id_qualifier": "12", "prescriber_id": "AB1234563"}, ("AB1234563", "12")),
    ({"prescriber_id_qualifier": "08", "prescriber_id": "LIC123"}, ("LIC123", "08")),
]


@pytest.mark.parametrize(("change", "expected"), PRESCRIBER_PASSES)
def test_prescriber_validated_by_qualifier(
    change: dict[str, Any], expected: tuple[str, str | None]
) -> None:
    rest, _ = split_phi({**FULL, **change})
    outcome = validate(rest, today=TODAY)
    assert outcome.issues == ()
    assert outcome.claim is not None
    assert (outcome.claim.prescriber_id, outcome.claim.prescriber_id_qualifier) == expected


#: Bounds that pass (the lower edges).
BOUND_PASSES = [
    {"date_of_service": "2000-01-01", "date_of_birth": "1878-01-01"},  # age 122 on the DOS
    {"quantity_dispensed": "1.234"},  # 9(7)v999: three decimals
    {"date_of_birth": "1904-11-01"},  # 122 years old exactly on the DOS 2026-11-01
]


@pytest.mark.parametrize("change", BOUND_PASSES)
def test_bounds_that_pass(change: dict[str, Any]) -> None:
    assert _all_issues({**FULL, **change}) == []


#: NCPDP D.0 payer sheets: "PCN: not required" (104-A4 is situational) -> optional
#: for NCPDP; JSONL/CSV/Parquet still require it (CONTRACT section 3).
@pytest.mark.parametrize(("fmt", "codes"), [("ncpdp", []), ("jsonl", ["MISSING_PCN"])])
def test_pcn_optional_for_ncpdp_only(fmt: str, codes: list[str]) -> None:
    rest, _ = split_phi({**FULL, "pcn": "  "})
    outcome = validate(rest, today=TODAY, fmt=fmt)
    assert [issue.code for issue in outcome.issues] == codes
    if not codes:
        assert outcome.claim is not None and outcome.claim.pcn is None
        assert "pcn" not in outcome.claim.gateway_fields()


def test_new_optional_fields_reach_the_gateway_body() -> None:
    rest, _ = split_phi({**FULL, "gross_amount_due": "21.87", "unit_of_measure": "GM"})
    outcome = validate(rest, today=TODAY)
    assert outcome.claim is not None
    body = outcome.claim.gateway_fields()
    assert body["gross_amount_due"] == 21.87 and body["unit_of_measure"] == "GM"


def test_huge_exponents_are_cheap() -> None:
    import time

    start = time.monotonic()
    for value in ("1e999999", "9e99999999", "-1e999999999"):
        validate({**MINIMAL, "days_supply": value, "fill_number": value}, today=TODAY)
    assert time.monotonic() - start < 1.0


@pytest.mark.parametrize("code", ["B1", "B2", "B3"])
def test_transaction_code_is_carried_and_sent(code: str) -> None:
    rest, _ = split_phi({**FULL, "transaction_code": code})
    outcome = validate(rest, today=TODAY)
    assert outcome.issues == ()
    assert outcome.claim is not None and outcome.claim.transaction_code == code
    assert outcome.claim.gateway_fields()["transaction_code"] == code


def test_absent_transaction_code_is_a_billing() -> None:
    rest, _ = split_phi(FULL)
    outcome = validate(rest, today=TODAY)
    assert outcome.claim is not None
    assert outcome.claim.model_dump(mode="json")["transaction_code"] == "B1"


def test_a_reversal_needs_no_dispensing_or_patient_fields() -> None:
    """A B2 names the paid claim; quantity, days supply, cardholder and plan id are not
    required."""
    dropped = ("quantity_dispensed", "days_supply", "cardholder_id", "plan_id")
    reversal = {k: v for k, v in FULL.items() if k not in dropped} | {"transaction_code": "B2"}
    assert _all_issues(reversal) == []
    rest, _ = split_phi(reversal)
    claim = validate(rest, today=TODAY).claim
    assert claim is not None and claim.quantity_dispensed is None
    assert "quantity_dispensed" not in claim.gateway_fields()
    billing = {**reversal, "transaction_code": "B3"}
    codes = {issue.code for issue in _all_issues(billing)}
    assert codes == {
        "MISSING_QUANTITY",
        "MISSING_DAYS_SUPPLY",
        "MISSING_CARDHOLDER_ID",
        "MISSING_PLAN_ID",
    }


def test_an_x12_void_needs_no_fill_or_rx_number() -> None:
    """An 837 carries no fill number and REF*XZ only when given: an X12 reversal (CLM05-3
    8) names its claim by the claim's identity; a flat-file reversal must name both."""
    void = {k: v for k, v in FULL.items() if k not in ("fill_number", "rx_number")}
    rest, _ = split_phi({**void, "transaction_code": "B2"})
    codes = {issue.code for issue in validate(rest, today=TODAY, fmt="x12").issues}
    assert not codes & {"MISSING_FILL_NUMBER", "MISSING_RX_NUMBER"}, codes
    flat = {issue.code for issue in validate(rest, today=TODAY, fmt="jsonl").issues}
    assert {"MISSING_FILL_NUMBER", "MISSING_RX_NUMBER"} <= flat, flat
