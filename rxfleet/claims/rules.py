"""The validation taxonomy: every rule's code, severity and meaning, in one table.

Severity, most severe first (the most severe issue of a claim wins):

* ``FATAL``: quarantined, never sent; dead-lettered with its codes.
* ``TRANSIENT``: an outside dependency failed; the link retries.
* ``WARN``: sent, and the flag is carried to the results.
* ``PASS``: nothing to say.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


class Severity(StrEnum):
    PASS = "PASS"
    WARN = "WARN"
    TRANSIENT = "TRANSIENT"
    FATAL = "FATAL"


#: What each severity does (the docs' severity list is generated from this table).
SEVERITY_MEANINGS: dict[Severity, str] = {
    Severity.PASS: "nothing to say",
    Severity.WARN: "sent, and the flag is carried to the results",
    Severity.TRANSIENT: "an outside dependency failed; the link retries",
    Severity.FATAL: "quarantined, never sent; dead-lettered with its codes",
}

SEVERITY_RANK = {Severity.PASS: 0, Severity.WARN: 1, Severity.TRANSIENT: 2, Severity.FATAL: 3}


class Rule(NamedTuple):
    code: str
    severity: Severity
    field: str | None
    meaning: str


_F, _W, _T = Severity.FATAL, Severity.WARN, Severity.TRANSIENT

RULES: dict[str, Rule] = {
    r.code: r
    for r in (
        # Reading the record.
        Rule("MALFORMED_RECORD", _F, None, "the record cannot be parsed at all"),
        Rule("UNEXPECTED_FIELD", _F, None, "a field that is not a canonical claim field"),
        Rule("DUPLICATE_FIELD", _F, None, "a field given twice in one record (which is meant?)"),
        Rule("DUPLICATE_CLAIM_ID", _F, "claim_id", "same claim_id and transaction_code earlier"),
        Rule("NO_PAYER_ROUTE", _F, "payer_id", "X12 payer with no BIN/PCN route in config/"),
        Rule("MISSING_FIELD", _F, None, "a field the format requires is empty"),
        Rule("INVALID_FIELD", _F, None, "a field does not hold what its standard says"),
        Rule("TRUNCATED_HEADER", _F, None, "NCPDP transaction header shorter than 56 bytes"),
        Rule("UNSUPPORTED_VERSION", _F, "version", "NCPDP version (102-A2) is not D0"),
        Rule("UNSUPPORTED_TRANSACTION", _F, "transaction_code", "NCPDP 103-A3 is not B1, B2, B3"),
        Rule("UNKNOWN_SEGMENT", _F, None, "NCPDP segment id that D.0 does not define"),
        Rule("MALFORMED_SEGMENT", _F, None, "NCPDP segment without a valid segment id"),
        Rule("MALFORMED_FIELD", _F, None, "NCPDP field shorter than its 2-character id"),
        Rule("MISSING_SEGMENT", _F, None, "an NCPDP segment the transaction needs is absent"),
        Rule("PRODUCT_NOT_NDC", _F, "ndc", "product ID qualifier (436-E1) is not 03 (NDC)"),
        Rule("TRANSACTION_COUNT_MISMATCH", _F, None, "109-A9 disagrees with the transactions"),
        Rule("SEGMENT_OUTSIDE_GROUP", _F, None, "NCPDP claim segments before the first 0x1D"),
        Rule("REPEATED_FIELD", _F, None, "a non-repeating NCPDP field appears twice"),
        Rule("UNIT_NOT_CONVERTIBLE", _F, "unit_of_measure", "X12 CTP05 unit has no exact EA/GM/ML"),
        Rule("SEGMENT_COUNT_MISMATCH", _F, None, "X12 SE01 disagrees with the segments counted"),
        Rule("CONTROL_NUMBER_MISMATCH", _F, None, "X12 trailer control number != its header's"),
        Rule("GROUP_COUNT_MISMATCH", _F, None, "X12 GE01/IEA01 disagrees with the sets/groups"),
        Rule("MISSING_TRAILER", _F, None, "X12 SE, GE or IEA trailer missing"),
        Rule("CONTROL_CHARACTER", _F, None, "a field holds NUL, DEL or a C0 control but tab"),
        Rule("FIELD_COUNT_MISMATCH", _F, None, "a CSV record's field count is not the header's"),
        Rule("UNRECORDABLE_VALUE", _F, None, "the system of record refuses a value of the claim"),
        # Identity and routing.
        Rule("MISSING_CLAIM_ID", _F, "claim_id", "claim_id is required"),
        Rule("INVALID_CLAIM_ID", _F, "claim_id", "claim_id: 1-64 of A-Z a-z 0-9 . _ : -"),
        Rule("MISSING_BIN", _F, "bin", "BIN (101-A1) is required"),
        Rule("INVALID_BIN", _F, "bin", "BIN (101-A1) must be 6 digits"),
        Rule("MISSING_PCN", _F, "pcn", "PCN (104-A4) is required"),
        Rule("INVALID_PCN", _F, "pcn", "PCN (104-A4): up to 10 letters, digits or - _"),
        Rule("INVALID_GROUP_ID", _F, "group_id", "group ID (301-C1): up to 15 characters"),
        Rule("MISSING_PLAN_ID", _F, "plan_id", "plan_id is required"),
        Rule("INVALID_PLAN_ID", _F, "plan_id", "plan_id: up to 64 characters"),
        Rule("INVALID_POS", _F, "pos", "place of service must be two digits"),
        Rule("INVALID_TRANSACTION_CODE", _F, "transaction_code", "B1, B2 or B3 (X12: 1, 7, 8)"),
        # Patient (checked at ingestion, before the values are tokenized).
        Rule("MISSING_CARDHOLDER_ID", _F, "cardholder_id", "cardholder ID (302-C2) is required"),
        Rule("INVALID_CARDHOLDER_ID", _F, "cardholder_id", "cardholder ID: up to 20 characters"),
        Rule("INVALID_DATE_OF_BIRTH", _F, "date_of_birth", "date of birth (304-C4) is not a date"),
        Rule("DATE_OF_BIRTH_IN_FUTURE", _F, "date_of_birth", "date of birth after today"),
        Rule("DATE_OF_BIRTH_TOO_OLD", _F, "date_of_birth", "age at service above 122 years"),
        # Service.
        Rule("MISSING_DATE_OF_SERVICE", _F, "date_of_service", "date of service is required"),
        Rule("INVALID_DATE_OF_SERVICE", _F, "date_of_service", "date of service is not a date"),
        Rule("DATE_OF_SERVICE_IN_FUTURE", _F, "date_of_service", "date of service after today"),
        Rule("DATE_OF_SERVICE_TOO_OLD", _F, "date_of_service", "date of service before 2000"),
        Rule("SERVICE_BEFORE_BIRTH", _F, "date_of_service", "date of service before birth"),
        Rule("MISSING_SERVICE_PROVIDER_ID", _F, "service_provider_id", "a B2 names the provider"),
        Rule("MISSING_RX_NUMBER", _F, "rx_number", "a reversal (B2) names the Rx number"),
        Rule("MISSING_FILL_NUMBER", _F, "fill_number", "a reversal (B2) names the fill number"),
        Rule("INVALID_SERVICE_PROVIDER_ID", _F, "service_provider_id", "provider: NPI or NCPDP"),
        Rule("INVALID_RX_NUMBER", _F, "rx_number", "Rx number: 402-D2 9(12); X12 REF02 AN 1-50"),
        Rule("INVALID_PERSON_CODE", _F, "person_code", "person code (303-C3): x(3)"),
        Rule("INVALID_RELATIONSHIP_CODE", _F, "patient_relationship_code", "306-C6: 0 to 4"),
        Rule("RELATIONSHIP_MISMATCH", _W, "patient_relationship_code", "306-C6 vs 303-C3"),
        Rule("INVALID_COMPOUND", _F, "compound_ingredients", "compound ingredients (segment 10)"),
        Rule("INVALID_FILL_NUMBER", _F, "fill_number", "fill number (403-D3): 0 to 99"),
        Rule("INVALID_PRESCRIBER_NPI", _F, "prescriber_id", "prescriber NPI: 10 digits, Luhn"),
        Rule("INVALID_PRESCRIBER_DEA", _F, "prescriber_id", "prescriber DEA: check digit fails"),
        Rule("INVALID_PRESCRIBER_ID", _F, "prescriber_id", "prescriber ID (411-DB): x(15)"),
        Rule("INVALID_PRESCRIBER_ID_QUALIFIER", _F, "prescriber_id_qualifier", "466-EZ: 2 digits"),
        # Drug and quantity.
        Rule("MISSING_NDC", _F, "ndc", "NDC (407-D7) is required"),
        Rule("ERR_INVALID_NDC_FORMAT", _F, "ndc", "NDC is not a valid 10- or 11-digit form"),
        Rule("ERR_AMBIGUOUS_NDC", _F, "ndc", "10-digit NDC without hyphens is ambiguous"),
        Rule("ERR_INVALID_NDC_LABELER", _F, "ndc", "NDC labeler 00000 is never assigned"),
        Rule("MISSING_QUANTITY", _F, "quantity_dispensed", "quantity (442-E7) is required"),
        Rule("INVALID_QUANTITY", _F, "quantity_dispensed", "quantity is not a number"),
        Rule("NON_POSITIVE_QUANTITY", _F, "quantity_dispensed", "quantity must be above zero"),
        Rule("QUANTITY_OUT_OF_RANGE", _F, "quantity_dispensed", "quantity above 9999999.999"),
        Rule("QUANTITY_TOO_PRECISE", _F, "quantity_dispensed", "quantity: at most 3 decimals"),
        Rule("INVALID_UNIT_OF_MEASURE", _F, "unit_of_measure", "unit (600-28): EA, GM or ML"),
        Rule("MISSING_DAYS_SUPPLY", _F, "days_supply", "days supply (405-D5) is required"),
        Rule("INVALID_DAYS_SUPPLY", _F, "days_supply", "days supply is not a whole number"),
        Rule("DAYS_SUPPLY_OUT_OF_RANGE", _F, "days_supply", "days supply must be 1 to 365"),
        Rule("DAYS_SUPPLY_OVER_PLAN_MAX", _W, "days_supply", "over the plan's maximum days supply"),
        Rule("INVALID_AMOUNT", _F, None, "an amount is not a number with at most 2 decimals"),
        Rule("NEGATIVE_AMOUNT", _F, None, "an amount is negative"),
        Rule("AMOUNT_OUT_OF_RANGE", _F, None, "an amount above 999999.99 (NCPDP s9(6)v99)"),
        # Crosswalk (the crosswalk link).
        Rule("MISSING_GPI_MAPPING", _F, "ndc", "the NDC is not in the NDC-to-GPI crosswalk"),
        Rule("FORMULARY_PENDING", _T, "ndc", "NDC unknown while a formulary update waits"),
        Rule("OBSOLETE_NDC", _W, "ndc", "the NDC is obsolete; the crosswalk names its successor"),
        Rule("PRIOR_AUTH_FLAG", _W, "ndc", "the drug needs prior authorization (pre-check)"),
        Rule("QUANTITY_LIMIT_FLAG", _W, "quantity_dispensed", "quantity over the drug's limit"),
        Rule("STEP_THERAPY_FLAG", _W, "ndc", "the drug is under step therapy (pre-check)"),
    )
}


def rule(code: str) -> Rule:
    """The rule of ``code``; KeyError for a code that is not in the table."""
    return RULES[code]


def worst(severities: list[Severity]) -> Severity:
    """The most severe of ``severities``; PASS for none."""
    return max(severities, key=SEVERITY_RANK.__getitem__, default=Severity.PASS)
