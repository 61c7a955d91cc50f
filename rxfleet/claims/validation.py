"""Validation of a record's raw fields into a ``Claim``, with one code per rule.

Two entry points, because PHI never leaves the producer in the clear:

* ``check_phi(fields)`` runs at ingestion on the PHI fields, before they are
  sealed into the vault; only the resulting codes travel on.
* ``validate(fields, ...)`` runs in the intake link (its last step) on the non-PHI
  fields.

Deterministic failures are results, not exceptions: both return ``Issue`` lists.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

from pydantic import ValidationError

from rxfleet.claims.dates import parse_date
from rxfleet.claims.fields import (
    CANONICAL_FIELDS,
    CLAIM_ID_MAX,
    CLAIM_ID_PATTERN,
    PHI_FIELDS,
    PLAN_ID_MAX,
)
from rxfleet.claims.model import Claim, is_reversal
from rxfleet.claims.ndc import NdcError, normalize_ndc
from rxfleet.claims.plans import NO_LIMITS, PlanLimits
from rxfleet.claims.rules import Severity, rule, worst


@dataclass(frozen=True, slots=True)
class Issue:
    """One broken rule: its code, the field and a message that quotes no value."""

    code: str
    field: str | None
    message: str

    @property
    def severity(self) -> Severity:
        return rule(self.code).severity

    @classmethod
    def of(cls, code: str, field: str | None = None, message: str | None = None) -> Issue:
        known = rule(code)
        return cls(code, field or known.field, message or known.meaning)


@dataclass(frozen=True, slots=True)
class Outcome:
    """The claim when it could be built, and every issue found."""

    claim: Claim | None
    issues: tuple[Issue, ...]

    @property
    def severity(self) -> Severity:
        return worst([issue.severity for issue in self.issues])


class _Bad(Exception):
    def __init__(self, code: str) -> None:
        self.code = code


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _text(max_len: int, pattern: str | None = None) -> Callable[[Any, str], str]:
    compiled = re.compile(pattern) if pattern else None

    def convert(value: Any, bad: str) -> str:
        text = str(value).strip()
        if len(text) > max_len or (compiled and not compiled.fullmatch(text)):
            raise _Bad(bad)
        return text

    return convert


def _date(value: Any, bad: str) -> date:
    try:
        return parse_date(value)
    except (ValueError, TypeError):
        raise _Bad(bad) from None


def _decimal(value: Any, bad: str) -> Decimal:
    if isinstance(value, bool):
        raise _Bad(bad)
    text = str(value).strip()
    if not text.isascii():  # Decimal() reads non-ASCII digits too
        raise _Bad(bad)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _Bad(bad) from None
    if not number.is_finite():
        raise _Bad(bad)
    return number


#: Whole numbers this large are out of every range (days supply, fill number); they
#: are not turned into Python ints: ``int(Decimal("1e999999"))`` takes seconds.
_HUGE = 10**10


def _whole(value: Any, bad: str) -> int:
    number = _decimal(value, bad)
    if number.adjusted() >= 10:  # ten digits or more: out of range, and cheap to say so
        return _HUGE if number > 0 else -_HUGE
    if number != number.to_integral_value():
        raise _Bad(bad)
    return int(number)


def _amount(value: Any, bad: str) -> Decimal:
    number = _decimal(value, bad)
    if number.as_tuple().exponent < -2:  # type: ignore[operator]
        raise _Bad(bad)
    if number < 0:
        raise _Bad("NEGATIVE_AMOUNT")
    return number


def npi_is_valid(npi: str) -> bool:
    """An NPI is 10 digits whose Luhn check over ``80840`` + NPI holds."""
    if len(npi) != 10 or not (npi.isascii() and npi.isdigit()):
        return False
    total = 0
    for position, char in enumerate(reversed("80840" + npi)):
        digit = int(char) * (2 if position % 2 else 1)
        total += digit - 9 if digit > 9 else digit
    return total % 10 == 0


#: DEA registrant type (first letter) per the DEA Diversion Control Division's
#: registration categories; the second letter is the registrant's last-name
#: initial, or 9 for a business-activity number.
_DEA = re.compile(r"[ABCDEFGHJKLMPRSTUX][A-Z9][0-9]{7}")


def dea_is_valid(dea: str) -> bool:
    """A DEA registration number: 2 letters, 7 digits, the 7th the check digit.

    Check digit: the last digit of (d1 + d3 + d5) + 2 * (d2 + d4 + d6) (the public
    DEA number formula, e.g. the CMS/NCPDP guidance on prescriber id 411-DB
    qualifier 12; also the algorithm pharmacy systems apply)."""
    if not _DEA.fullmatch(dea):
        return False
    d = [int(c) for c in dea[2:]]
    return (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10 == d[6]


#: 466-EZ Prescriber ID Qualifier values validated beyond format.
QUALIFIER_NPI, QUALIFIER_DEA = "01", "12"
_OTHER_PRESCRIBER_ID = re.compile(r"[A-Za-z0-9\-]{1,15}")  # 411-DB x(15)


def _prescriber(fields: Mapping[str, Any], values: dict[str, Any]) -> list[Issue]:
    """411-DB validated by its qualifier 466-EZ: NPI Luhn (01, or absent), DEA check
    digit (12), else format only (x(15))."""
    raw_qualifier, raw_id = fields.get("prescriber_id_qualifier"), fields.get("prescriber_id")
    qualifier: str | None = None
    if not _blank(raw_qualifier):
        qualifier = str(raw_qualifier).strip()
        if not re.fullmatch(r"[0-9]{2}", qualifier):
            return [Issue.of("INVALID_PRESCRIBER_ID_QUALIFIER")]
        values["prescriber_id_qualifier"] = qualifier
    if _blank(raw_id):
        return []
    text = str(raw_id).strip()
    if qualifier in (None, QUALIFIER_NPI):
        ok, code = npi_is_valid(text), "INVALID_PRESCRIBER_NPI"
    elif qualifier == QUALIFIER_DEA:
        ok, code = dea_is_valid(text), "INVALID_PRESCRIBER_DEA"
    else:
        ok, code = bool(_OTHER_PRESCRIBER_ID.fullmatch(text)), "INVALID_PRESCRIBER_ID"
    if not ok:
        return [Issue.of(code)]
    values["prescriber_id"] = text
    return []


def _quantity(value: Any, bad: str) -> Decimal:
    number = _decimal(value, bad)
    if number.as_tuple().exponent < -3:  # type: ignore[operator]
        raise _Bad("QUANTITY_TOO_PRECISE")  # 442-E7 is 9(7)v999
    return number


#: field -> (code when missing or None if optional, code when invalid, converter)
_FIELDS: dict[str, tuple[str | None, str, Callable[[Any, str], Any]]] = {
    "claim_id": ("MISSING_CLAIM_ID", "INVALID_CLAIM_ID", _text(CLAIM_ID_MAX, CLAIM_ID_PATTERN)),
    "bin": ("MISSING_BIN", "INVALID_BIN", _text(6, r"[0-9]{6}")),
    "pcn": ("MISSING_PCN", "INVALID_PCN", _text(10, r"[A-Za-z0-9_\-]+")),
    "group_id": (None, "INVALID_GROUP_ID", _text(15)),
    "service_provider_id": (None, "INVALID_SERVICE_PROVIDER_ID", _text(15, r"[0-9]{7}|[0-9]{10}")),
    "date_of_service": ("MISSING_DATE_OF_SERVICE", "INVALID_DATE_OF_SERVICE", _date),
    "rx_number": (None, "INVALID_RX_NUMBER", _text(12, r"[0-9]+")),
    "fill_number": (None, "INVALID_FILL_NUMBER", _whole),
    "quantity_dispensed": ("MISSING_QUANTITY", "INVALID_QUANTITY", _quantity),
    "days_supply": ("MISSING_DAYS_SUPPLY", "INVALID_DAYS_SUPPLY", _whole),
    "ingredient_cost_submitted": (None, "INVALID_AMOUNT", _amount),
    "usual_and_customary": (None, "INVALID_AMOUNT", _amount),
    "gross_amount_due": (None, "INVALID_AMOUNT", _amount),
    "unit_of_measure": (None, "INVALID_UNIT_OF_MEASURE", _text(2, r"EA|GM|ML")),
    "plan_id": ("MISSING_PLAN_ID", "INVALID_PLAN_ID", _text(PLAN_ID_MAX)),
    "pos": (None, "INVALID_POS", _text(2, r"[0-9]{2}")),
    "person_code": (None, "INVALID_PERSON_CODE", _text(3, r"[A-Za-z0-9]+")),
    "patient_relationship_code": (None, "INVALID_RELATIONSHIP_CODE", _text(1, r"[0-4]")),
    "transaction_code": (None, "INVALID_TRANSACTION_CODE", _text(2, r"B[1-3]")),
}

#: Rules that differ by format. X12 REF*XZ REF02 (the prescription number of
#: 2410) is AN 1-50 (837P TR3 005010X222A2): letters are legal there; NCPDP
#: 402-D2 is 9(12) and JSONL/CSV/Parquet keep the NCPDP rule.
_BY_FORMAT: dict[str, dict[str, tuple[str | None, str, Callable[[Any, str], Any]]]] = {
    "x12": {"rx_number": (None, "INVALID_RX_NUMBER", _text(50, r"[\x21-\x7e][\x20-\x7e]*"))},
}
#: Each format's whole table (the common rules with its own over them), made once.
_TABLES = {fmt: _FIELDS | rules for fmt, rules in _BY_FORMAT.items()}


#: Fields a format does not carry or does not require, so their absence is no
#: fault of the sender's (docs/formats.md: days supply and PCN are required for
#: JSONL, CSV and Parquet). NCPDP D.0: 104-A4 PCN is "required if" on payer sheets,
#: many say "PCN: not required" (e.g. the Express Scripts, Caremark and state
#: Medicaid D.0 payer sheets), so a blank PCN in the header is no fault.
NOT_CARRIED: dict[str, frozenset[str]] = {
    # An 837 carries no fill number, and the Rx number (REF*XZ) only when the pharmacy
    # gave one: a void (CLM05-3 8) names its claim by the claim's own identity.
    "x12": frozenset({"days_supply", "fill_number", "rx_number"}),
    "ncpdp": frozenset({"pcn"}),
}


class TransactionNeeds(NamedTuple):
    """What a transaction code (103-A3) requires beyond, or instead of, the format's rules."""

    required: dict[str, str]  # field -> the code when it is missing
    not_required: frozenset[str]  # fields the transaction does not carry


#: A reversal (B2) identifies the paid claim (docs/protocol.md, "Reversal and rebill"):
#: provider, Rx and fill are required; it dispenses nothing (NCPDP D.0 B2: no drug,
#: quantity or days supply; the patient and insurance segments are situational), and
#: the payer finds the paid claim by its identity, not its plan (no plan id needed).
BY_TRANSACTION: dict[str, TransactionNeeds] = {
    "B2": TransactionNeeds(
        required={
            "service_provider_id": "MISSING_SERVICE_PROVIDER_ID",
            "rx_number": "MISSING_RX_NUMBER",
            "fill_number": "MISSING_FILL_NUMBER",
        },
        not_required=frozenset(
            {"ndc", "quantity_dispensed", "days_supply", "cardholder_id", "plan_id"}
        ),
    ),
}
_NO_NEEDS = TransactionNeeds({}, frozenset())


def _needs(fields: Mapping[str, Any]) -> TransactionNeeds:
    return BY_TRANSACTION.get(str(fields.get("transaction_code") or "B1"), _NO_NEEDS)


def _not_required(fields: Mapping[str, Any], fmt: str) -> frozenset[str]:
    """What the format does not carry and the transaction does not need."""
    return NOT_CARRIED.get(fmt, frozenset()) | _needs(fields).not_required


def _coerce(
    fields: Mapping[str, Any], optional: frozenset[str], fmt: str = ""
) -> tuple[dict[str, Any], list[Issue]]:
    values: dict[str, Any] = {}
    issues: list[Issue] = []
    needs = _needs(fields)
    optional |= needs.not_required
    for name, (missing, invalid, convert) in _TABLES.get(fmt, _FIELDS).items():
        raw = fields.get(name)
        missing = needs.required.get(name, missing)
        if _blank(raw):
            if missing and name not in optional:
                issues.append(Issue.of(missing, name))
            continue
        try:
            values[name] = convert(raw, invalid)
        except _Bad as bad:
            issues.append(Issue.of(bad.code, name))
    return values, issues


def _compound(raw: Any, values: dict[str, Any]) -> list[Issue]:
    """Segment 10 ingredients: each an NDC (normalized to 11 digits), a quantity
    above zero (448-ED, 9(7)v999) and a cost (449-EE, s9(6)v99, not negative)."""
    if raw is None or raw == []:
        return []
    if not isinstance(raw, list) or not all(isinstance(item, Mapping) for item in raw):
        return [Issue.of("INVALID_COMPOUND")]
    try:
        values["compound_ingredients"] = [_ingredient(item) for item in raw]
    except (_Bad, NdcError):
        return [Issue.of("INVALID_COMPOUND")]
    return []


def _ingredient(item: Mapping[str, Any]) -> dict[str, Any]:
    quantity = _quantity(item.get("quantity"), "INVALID_COMPOUND")
    cost = _amount(item.get("cost", 0), "INVALID_COMPOUND")
    if not 0 < quantity <= MAX_QUANTITY or cost > MAX_AMOUNT:
        raise _Bad("INVALID_COMPOUND")
    return {"ndc11": normalize_ndc(str(item.get("ndc", ""))), "quantity": quantity, "cost": cost}


def _ndc(fields: Mapping[str, Any], values: dict[str, Any]) -> list[Issue]:
    raw = fields.get("ndc")
    if _blank(raw):
        return [] if "ndc" in _needs(fields).not_required else [Issue.of("MISSING_NDC")]
    values["ndc"] = str(raw).strip()
    try:
        values["ndc11"] = normalize_ndc(values["ndc"])
    except NdcError as exc:
        return [Issue.of(exc.code, "ndc", str(exc))]
    return []


#: Earliest date of service: 2000-01-01. The HIPAA transactions final rule
#: (45 CFR 162, 65 FR 50312, August 2000) first named an NCPDP standard for
#: pharmacy claims; D.0 itself was required from 2012-01-01. Claims are reprocessed
#: years later (timely filing and Part D reconciliation reach back a few years),
#: never a quarter of a century: an earlier date is a typo (1926 for 2026).
EARLIEST_SERVICE = date(2000, 1, 1)
#: Oldest age at the date of service: 122 full years, the longest verified human
#: life (Jeanne Calment, 1875-1997, Gerontology Research Group). A date of birth
#: more than that before the date of service (or today, without one) is a typo.
MAX_AGE_YEARS = 122

#: NCPDP field formats: 442-E7 9(7)v999; 409-D9 and 426-DQ s9(6)v99.
MAX_QUANTITY = Decimal("9999999.999")
MAX_AMOUNT = Decimal("999999.99")


def _ranges(values: Mapping[str, Any], today: date) -> list[Issue]:
    issues: list[Issue] = []
    if "quantity_dispensed" in values and values["quantity_dispensed"] <= 0:
        issues.append(Issue.of("NON_POSITIVE_QUANTITY"))
    if "quantity_dispensed" in values and values["quantity_dispensed"] > MAX_QUANTITY:
        issues.append(Issue.of("QUANTITY_OUT_OF_RANGE"))
    for name in ("ingredient_cost_submitted", "usual_and_customary", "gross_amount_due"):
        if name in values and values[name] > MAX_AMOUNT:
            issues.append(Issue.of("AMOUNT_OUT_OF_RANGE", name))
    if "days_supply" in values and not 1 <= values["days_supply"] <= 365:
        issues.append(Issue.of("DAYS_SUPPLY_OUT_OF_RANGE"))
    if "fill_number" in values and not 0 <= values["fill_number"] <= 99:
        issues.append(Issue.of("INVALID_FILL_NUMBER"))
    if "date_of_service" in values and values["date_of_service"] > today:
        issues.append(Issue.of("DATE_OF_SERVICE_IN_FUTURE"))
    if "date_of_service" in values and values["date_of_service"] < EARLIEST_SERVICE:
        issues.append(Issue.of("DATE_OF_SERVICE_TOO_OLD"))
    return issues


def _unexpected(fields: Mapping[str, Any]) -> list[Issue]:
    known = set(CANONICAL_FIELDS) | {"patient_token"}
    return [
        Issue.of("UNEXPECTED_FIELD", name, "field is not a canonical claim field")
        for name in sorted(set(fields) - known)
    ]


def _cross_fields(values: Mapping[str, Any], limits: PlanLimits) -> list[Issue]:
    """Seed 004's cross-field rules (``rxfleet.claims.plans``): WARN, the payer decides."""
    issues = []
    relationship, person = values.get("patient_relationship_code"), values.get("person_code")
    if relationship and person and limits.cardholder_person_codes:
        cardholder = person in limits.cardholder_person_codes
        if (relationship == "1") != cardholder and relationship != "0":
            issues.append(Issue.of("RELATIONSHIP_MISMATCH"))
    most = limits.max_days_supply(values.get("plan_id"))
    if most is not None and values.get("days_supply", 0) > most:
        issues.append(Issue.of("DAYS_SUPPLY_OVER_PLAN_MAX"))
    return issues


def validate(
    fields: Mapping[str, Any],
    *,
    today: date | None = None,
    fmt: str | None = None,
    limits: PlanLimits = NO_LIMITS,
) -> Outcome:
    """Validate the non-PHI fields of a record (read from format ``fmt``) into a ``Claim``."""
    values, issues = _coerce(fields, _not_required(fields, fmt or ""), fmt or "")
    issues += _prescriber(fields, values) + _compound(fields.get("compound_ingredients"), values)
    issues += _ndc(fields, values) + _ranges(values, today or date.today()) + _unexpected(fields)
    issues += _cross_fields(values, limits)
    if fields.get("patient_token"):
        values["patient_token"] = fields["patient_token"]
    if any(issue.severity is Severity.FATAL for issue in issues):
        return Outcome(None, tuple(issues))
    try:
        return Outcome(Claim.model_validate(values), tuple(issues))
    except ValidationError as exc:  # a rule missing from the table above: still a result
        field = ".".join(str(part) for part in exc.errors()[0]["loc"])
        return Outcome(None, (*issues, Issue.of("MALFORMED_RECORD", field, "schema violation")))


def check_phi(fields: Mapping[str, Any], *, today: date | None = None) -> list[Issue]:
    """Rules on the PHI fields, run before they are sealed and tokenized."""
    issues: list[Issue] = []
    cardholder = fields.get("cardholder_id")
    if _blank(cardholder):
        if not is_reversal(fields):
            issues.append(Issue.of("MISSING_CARDHOLDER_ID"))
    elif len(str(cardholder).strip()) > 20:
        issues.append(Issue.of("INVALID_CARDHOLDER_ID"))
    issues += _check_birth(fields.get("date_of_birth"), fields, today or date.today())
    return issues


def _check_birth(raw: Any, fields: Mapping[str, Any], today: date) -> list[Issue]:
    if _blank(raw):
        return []
    try:
        born = parse_date(raw)
    except (ValueError, TypeError, OverflowError):
        return [Issue.of("INVALID_DATE_OF_BIRTH")]
    if born > today:
        return [Issue.of("DATE_OF_BIRTH_IN_FUTURE")]
    try:
        served: date | None = parse_date(fields.get("date_of_service"))
    except (ValueError, TypeError, OverflowError):
        served = None
    if _age(born, served or today) > MAX_AGE_YEARS:
        return [Issue.of("DATE_OF_BIRTH_TOO_OLD")]
    return [Issue.of("SERVICE_BEFORE_BIRTH")] if served is not None and served < born else []


def _age(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def split_phi(fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str | None]]:
    """(non-PHI fields, PHI fields as strings) of a record."""
    phi = {name: _phi_text(fields.get(name)) for name in PHI_FIELDS}
    rest = {name: value for name, value in fields.items() if name not in PHI_FIELDS}
    return rest, phi


def _phi_text(value: Any) -> str | None:
    if _blank(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()
