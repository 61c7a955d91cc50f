"""One vocabulary for the fields of a claim and of its result.

Canonical claim field names and which of them are PHI (the input side), the
claim-id pattern every reader and the model share, and the result fields (the
output side), each defined once.
"""

from __future__ import annotations

#: Canonical field names (docs/formats.md), in documented order.
CANONICAL_FIELDS: tuple[str, ...] = (
    "claim_id",
    "bin",
    "pcn",
    "group_id",
    "cardholder_id",
    "patient_first_name",
    "patient_last_name",
    "date_of_birth",
    "service_provider_id",
    "date_of_service",
    "rx_number",
    "fill_number",
    "ndc",
    "quantity_dispensed",
    "days_supply",
    "prescriber_id",
    "ingredient_cost_submitted",
    "usual_and_customary",
    "plan_id",
    "pos",
    # Optional, added by issue 11 (each named by its NCPDP D.0 field):
    "prescriber_id_qualifier",  # 466-EZ: 01 NPI, 12 DEA, ... (absent: NPI)
    "gross_amount_due",  # 430-DU: X12 SV102/SV203 line charge maps here
    "unit_of_measure",  # 600-28: EA, GM or ML (X12 CTP05 converted)
    # Added by issue 16: who on the card the patient is (keys patient_token).
    "person_code",  # 303-C3: the payer's number of the person on the card, x(3)
    "patient_relationship_code",  # 306-C6: 1 cardholder, 2 spouse, 3 child, 4 other
    "compound_ingredients",  # segment 10: [{ndc, quantity, cost}], a compound claim only
    # Added by issue 17: what the record asks for (103-A3; X12 CLM05-3). Absent: B1.
    "transaction_code",
)

#: 103-A3 transaction codes a claim record may carry: billing, reversal, rebill.
TRANSACTION_CODES: tuple[str, ...] = ("B1", "B2", "B3")
#: The transaction code of a record that names none: a billing.
DEFAULT_TRANSACTION = "B1"
#: A reversal: it carries the paid claim's identity, not a dispensing (no quantity,
#: days supply or patient segment is required of it).
REVERSAL = "B2"

#: Fields that are PHI: split off into the vault at ingestion.
PHI_FIELDS: tuple[str, ...] = (
    "cardholder_id",
    "patient_first_name",
    "patient_last_name",
    "date_of_birth",
)

#: A claim id: 1-64 of A-Z a-z 0-9 . _ : - (it prefixes the gateway's Idempotency-Key).
CLAIM_ID_CHARS = r"[A-Za-z0-9._:\-]"
CLAIM_ID_MAX = 64
CLAIM_ID_PATTERN = rf"^{CLAIM_ID_CHARS}{{1,{CLAIM_ID_MAX}}}$"

#: A plan id: up to 64 characters. A derived NCPDP id ``BIN-PCN-group`` is up to
#: 6 + 1 + 10 + 1 + 15 = 33 (101-A1, 104-A4 and 301-C1 at their D.0 maxima).
PLAN_ID_MAX = 64

#: The result fields, one row per input claim, in this order.
RESULT_FIELDS: tuple[str, ...] = (
    "claim_id",
    "status",
    "severity",
    "errors",
    "ndc11",
    "gpi",
    "reject_codes",
    "route",
    "patient_token",
    "attempts",
    # Added by issue 17: the transaction, the why, the money, the origin.
    "transaction_code",
    "reason",
    "amount_paid",
    "patient_pay",
    "authorization_number",
    "source",
)
#: Each result field's type and meaning (the docs' result table is generated from this).
RESULT_FIELD_MEANINGS: dict[str, tuple[str, str]] = {
    "claim_id": ("text", "the input's claim id (derived for NCPDP and X12)"),
    "status": ("status", "the terminal status"),
    "severity": ("severity", "the worst validation finding"),
    "errors": (
        "list",
        "validation codes ([formats.md](formats.md#validation-codes)), in the order found",
    ),
    "ndc11": ("text", "the normalized NDC (null when it could not be)"),
    "gpi": ("text", "GPI-14 from the crosswalk"),
    "reject_codes": (
        "list",
        "NCPDP reject codes from the gateway (511-FB), or the fleet's own `04` / `99`",
    ),
    "route": ("route", "what happens next ([routes](#routes))"),
    "patient_token": (
        "text",
        "keyed HMAC of the person (cardholder id and person code or"
        " relationship and date of birth); never the PHI itself",
    ),
    "attempts": ("int", "requests made to the gateway for this claim"),
    "transaction_code": ("text", "`B1`, `B2` or `B3` as submitted (absent in the input: `B1`)"),
    "reason": ("reason", "why it ended so ([reasons](#reasons)); `PAYER` for the payer's answer"),
    "amount_paid": ("decimal", "the payer's `pricing.total_amount_paid` (null when not paid)"),
    "patient_pay": ("decimal", "the payer's `pricing.patient_pay_amount` (null when not paid)"),
    "authorization_number": ("text", "the payer's authorization number (null when not paid)"),
    "source": ("text", "where it came from: `file:line` (NCPDP `file:line:transaction`)"),
}
#: Result fields that hold amounts (Decimal to the cent; JSON numbers in JSON Lines).
MONEY_FIELDS: tuple[str, ...] = ("amount_paid", "patient_pay")
#: Result fields that hold lists (joined with ``;`` in CSV).
LIST_FIELDS: tuple[str, ...] = ("errors", "reject_codes")
