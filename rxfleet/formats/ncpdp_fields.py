"""NCPDP Telecommunication Standard D.0 as data: header layouts, segments, fields, code sets.

Everything the NCPDP reader knows about the standard lives here as tables; the
reader only walks them. Field references are ``number-id`` as in the NCPDP Data
Dictionary (``402-D2``); the two-character id is what appears on the wire.

Sources (public):

- Request transaction header, 56 bytes, field order and widths: DataInsight,
  "NCPDP Transaction Header: Batch and Telecom Versions"
  (https://datainsight.health/edi/ncpdp/ncpdp-headers); order confirmed by the
  VistA BPS NCPDP FORMATS payer sheets
  (https://vivian.worldvista.org/vivian-data/9002313_92/9002313.92-51.html).
- Separators (segment 0x1E, group 0x1D, field 0x1C), segment identifiers 01-13 and
  20-26, up to four transactions per transmission with patient/insurance at the
  transmission level: Infor Cloverleaf Integration Services documentation,
  "NCPDP Telecom message structure",
  https://health-comm.de/download/cloverleaf-integration-services-2022-09-documentation/?wpdmdl=4496&refresh=662b11fc0322e1714098684&ind=16780893232271&filename=HVI-CLIS_20220900_DOCUMENT.zip
  ; D.0 request segments 14-16 added (additional documentation, facility,
  narrative): comments of the VistA routine BPSOSH2 (E Claims Management Engine).
- Field ids of the insurance (04), claim (07), prescriber (03) and pricing (11)
  segments: transactrx/ncpdpscript ``pkg/ncpdpscriptmessages/segments/b1Request.go``
  (GitHub); a worked B1 example with ``AM04 C2/CC/CD/C1``, ``AM01 C4/CA/CB``,
  ``AM07 EM/D2/E1/D7/E7/D3/D5`` and ``AM11 D9/DQ/DU``: DataInsight, "NCPDP Telecom
  Format for Mere Mortals" (https://datainsight.health/ncpdp/intro/).
- Response header field order (102-A2, 103-A3, 109-A9, 501-F1, 202-B2, 201-B1,
  401-D1) and response status segment 21 (112-AN, 503-F3, 510-FA, 511-FB, 546-4F,
  526-FQ): Wisconsin Medicaid companion document, "B1 Rejected Response"
  (http://dhfs.wisconsin.gov/medicaid9/edi/companion/ncpdp_v3/ncpdp5_1_3.htm);
  segment 21 field list also in higher-pixels/ncpdp ``lib/segments/response_status.rb``.
  Response header widths follow the Data Dictionary widths of the same fields in
  the request header (2, 2, 1, 1 for 501-F1, 2, 15, 8: 31 bytes).
- 112-AN transaction response status values (A, C, D, F, P, Q, R, S): VistA
  RESPONSES file 9002313.0301
  (https://caregraf.com/VAVistAAnalysis/VistAReference/Models/foiaVistA/9002313_0301.html).
- Signed overpunch: see :mod:`rxfleet.formats.overpunch`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from rxfleet.claims.dates import ccyymmdd_to_iso
from rxfleet.formats.overpunch import decode_overpunch

SEGMENT_SEPARATOR = "\x1e"
GROUP_SEPARATOR = "\x1d"
FIELD_SEPARATOR = "\x1c"
SEGMENT_ID_FIELD = "AM"  # 111-AM Segment Identification
VERSION_D0 = "D0"
MAX_TRANSACTIONS = 4


class FieldValueError(ValueError):
    """A field's value does not fit its format; the message never quotes the value."""


class TransactionCode(StrEnum):
    """103-A3 Transaction Code (the ones rxfleet may see)."""

    ELIGIBILITY = "E1"
    BILLING = "B1"
    REVERSAL = "B2"
    REBILL = "B3"


class RequestSegment(StrEnum):
    """111-AM Segment Identification of request segments."""

    PATIENT = "01"
    PHARMACY_PROVIDER = "02"
    PRESCRIBER = "03"
    INSURANCE = "04"
    COB = "05"
    WORKERS_COMPENSATION = "06"
    CLAIM = "07"
    DUR_PPS = "08"
    COUPON = "09"
    COMPOUND = "10"
    PRICING = "11"
    PRIOR_AUTHORIZATION = "12"
    CLINICAL = "13"
    ADDITIONAL_DOCUMENTATION = "14"
    FACILITY = "15"
    NARRATIVE = "16"


class ResponseSegment(StrEnum):
    """111-AM Segment Identification of response segments."""

    MESSAGE = "20"
    STATUS = "21"
    CLAIM = "22"
    PRICING = "23"
    DUR_PPS = "24"
    INSURANCE = "25"
    PRIOR_AUTHORIZATION = "26"


#: Segments that may come before the first group separator, shared by every
#: transaction (patient, insurance; pharmacy provider, which submitters put there
#: as one pharmacy sends every claim of a transmission).
TRANSMISSION_SEGMENTS = frozenset(
    {RequestSegment.PATIENT, RequestSegment.INSURANCE, RequestSegment.PHARMACY_PROVIDER}
)


class HeaderResponseStatus(StrEnum):
    """501-F1 Header Response Status."""

    ACCEPTED = "A"
    REJECTED = "R"


class TransactionResponseStatus(StrEnum):
    """112-AN Transaction Response Status."""

    APPROVED = "A"
    CAPTURED = "C"
    DUPLICATE_OF_PAID = "D"
    PA_DEFERRED = "F"
    PAID = "P"
    DUPLICATE_OF_CAPTURED = "Q"
    REJECTED = "R"
    DUPLICATE_OF_APPROVED = "S"


class ProductIdQualifier(StrEnum):
    """436-E1 Product/Service ID Qualifier (those rxfleet takes); 488-RE uses the same
    codes for a compound ingredient."""

    NOT_SPECIFIED = "00"  # a compound: the ingredients are in segment 10
    NDC = "03"


#: Segment 10 (compound) fields that repeat once per ingredient, 447-EC giving the count.
COMPOUND_INGREDIENT_FIELDS = {
    "RE": "product_id_qualifier",  # 488-RE
    "TE": "ndc",  # 489-TE
    "ED": "quantity",  # 448-ED
    "EE": "cost",  # 449-EE
}
COMPOUND_COUNT_FIELD = "EC"  # 447-EC Compound Ingredient Component Count


# --- converters: raw text → value; raise FieldValueError, never quoting the value ---


def as_text(raw: str) -> str:
    """Free text, trailing blanks removed (fixed-width fields are space-padded)."""
    return raw.strip()


def as_date(raw: str) -> str:
    """CCYYMMDD → ISO ``YYYY-MM-DD``."""
    try:
        return ccyymmdd_to_iso(raw)
    except ValueError as exc:
        raise FieldValueError(str(exc)) from None


def as_count(raw: str) -> int:
    """An unsigned whole number (``9(n)``)."""
    text = raw.strip()
    if not text or not text.isascii() or not text.isdigit():
        raise FieldValueError("not a whole number")
    return int(text)


def as_quantity(raw: str) -> Decimal:
    """``9(7)v999``: unsigned, three implied decimal places (442-E7)."""
    return Decimal(as_count(raw)).scaleb(-3)


def as_amount(raw: str) -> Decimal:
    """``s9(n)v99``: signed overpunch (or plain digits), two implied decimals."""
    try:
        return decode_overpunch(raw, decimals=2)
    except ValueError as exc:
        raise FieldValueError("not a signed-overpunch amount") from exc


Converter = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class HeaderField:
    """One fixed-width field of a header."""

    name: str
    ref: str
    width: int
    convert: Converter = as_text


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field of a segment: its NCPDP reference, where it goes and how it is read.

    ``name`` is the canonical field name (docs/formats.md) or, for fields
    rxfleet reads but does not forward, a descriptive name prefixed with ``_``.
    """

    ref: str
    name: str
    convert: Converter = as_text

    @property
    def field_id(self) -> str:
        """The two-character identifier on the wire."""
        return self.ref.split("-")[1]


#: The request transaction header (telecom, not batch), 56 bytes.
REQUEST_HEADER: tuple[HeaderField, ...] = (
    HeaderField("bin", "101-A1", 6),
    HeaderField("_version", "102-A2", 2),
    HeaderField("transaction_code", "103-A3", 2),  # canonical: B1, B2 or B3
    HeaderField("pcn", "104-A4", 10),
    HeaderField("_transaction_count", "109-A9", 1, as_count),
    HeaderField("_service_provider_id_qualifier", "202-B2", 2),
    HeaderField("service_provider_id", "201-B1", 15),
    HeaderField("date_of_service", "401-D1", 8, as_date),
    HeaderField("_software_vendor_id", "110-AK", 10),
)
REQUEST_HEADER_LENGTH = sum(field.width for field in REQUEST_HEADER)
assert REQUEST_HEADER_LENGTH == 56, "the D.0 request header is 56 bytes"

#: The response header, 31 bytes.
RESPONSE_HEADER: tuple[HeaderField, ...] = (
    HeaderField("version", "102-A2", 2),
    HeaderField("transaction_code", "103-A3", 2),
    HeaderField("transaction_count", "109-A9", 1, as_count),
    HeaderField("header_response_status", "501-F1", 1),
    HeaderField("service_provider_id_qualifier", "202-B2", 2),
    HeaderField("service_provider_id", "201-B1", 15),
    HeaderField("date_of_service", "401-D1", 8, as_date),
)
RESPONSE_HEADER_LENGTH = sum(field.width for field in RESPONSE_HEADER)
assert RESPONSE_HEADER_LENGTH == 31, "the D.0 response header is 31 bytes"


def _specs(*specs: FieldSpec) -> dict[str, FieldSpec]:
    return {spec.field_id: spec for spec in specs}


#: Request segments rxfleet reads: segment id → field id → spec.
REQUEST_FIELDS: dict[str, dict[str, FieldSpec]] = {
    RequestSegment.INSURANCE: _specs(
        FieldSpec("302-C2", "cardholder_id"),
        FieldSpec("301-C1", "group_id"),
        FieldSpec("303-C3", "person_code"),
        FieldSpec("312-CC", "_cardholder_first_name"),
        FieldSpec("313-CD", "_cardholder_last_name"),
    ),
    RequestSegment.PATIENT: _specs(
        FieldSpec("304-C4", "date_of_birth", as_date),
        FieldSpec("310-CA", "patient_first_name"),
        FieldSpec("311-CB", "patient_last_name"),
        FieldSpec("306-C6", "patient_relationship_code"),
    ),
    RequestSegment.CLAIM: _specs(
        FieldSpec("455-EM", "_rx_reference_qualifier"),
        FieldSpec("402-D2", "rx_number"),
        FieldSpec("436-E1", "_product_id_qualifier"),
        FieldSpec("407-D7", "ndc"),
        FieldSpec("442-E7", "quantity_dispensed", as_quantity),
        FieldSpec("403-D3", "fill_number", as_count),
        FieldSpec("405-D5", "days_supply", as_count),
    ),
    RequestSegment.PRESCRIBER: _specs(
        FieldSpec("466-EZ", "prescriber_id_qualifier"),
        FieldSpec("411-DB", "prescriber_id"),
    ),
    RequestSegment.PRICING: _specs(
        FieldSpec("409-D9", "ingredient_cost_submitted", as_amount),
        FieldSpec("426-DQ", "usual_and_customary", as_amount),
        FieldSpec("430-DU", "gross_amount_due", as_amount),
    ),
}

#: Response segments rxfleet reads. Repeating fields (511-FB, 526-FQ) are collected.
RESPONSE_FIELDS: dict[str, dict[str, FieldSpec]] = {
    ResponseSegment.MESSAGE: _specs(FieldSpec("504-F4", "message")),
    ResponseSegment.STATUS: _specs(
        FieldSpec("112-AN", "transaction_response_status"),
        FieldSpec("503-F3", "authorization_number"),
        FieldSpec("510-FA", "reject_count", as_count),
        FieldSpec("511-FB", "reject_codes"),
        FieldSpec("526-FQ", "additional_messages"),
    ),
    ResponseSegment.CLAIM: _specs(
        FieldSpec("455-EM", "rx_reference_qualifier"),
        FieldSpec("402-D2", "rx_number"),
    ),
    ResponseSegment.PRICING: _specs(
        FieldSpec("505-F5", "patient_pay_amount", as_amount),
        FieldSpec("509-F9", "total_amount_paid", as_amount),
    ),
}

#: Response fields that may repeat within their segment.
REPEATING_RESPONSE_FIELDS = frozenset({"reject_codes", "additional_messages"})
