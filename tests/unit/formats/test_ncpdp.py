"""The NCPDP D.0 reader and response parser, over constructed transmissions."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.errors import InputError
from rxfleet.formats.base import Record
from rxfleet.formats.ncpdp import parse_response, parse_transmission, read_ncpdp, sniff_ncpdp
from rxfleet.formats.ncpdp_fields import (
    REQUEST_HEADER_LENGTH,
    RESPONSE_HEADER_LENGTH,
    HeaderResponseStatus,
    TransactionResponseStatus,
    as_quantity,
)
from rxfleet.formats.overpunch import decode_overpunch, encode_overpunch
from tests.unit.formats import ncpdp_build as b
from tests.unit.formats.ids import claim_id_of, has_claim_id

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "ncpdp"


def _write(tmp_path: Path, *lines: str, newline: str = "\n") -> str:
    path = tmp_path / "claims.ncpdp"
    path.write_bytes((newline.join(lines) + newline).encode())
    return str(path)


# --- layouts and number formats ----------------------------------------------------


def test_header_layouts_have_the_standard_lengths() -> None:
    assert REQUEST_HEADER_LENGTH == 56
    assert RESPONSE_HEADER_LENGTH == 31


_POSITIVE = "{ABCDEFGHI"
_NEGATIVE = "}JKLMNOPQR"
OVERPUNCH_CASES = [(f"218{c}", Decimal(f"21.8{d}")) for d, c in enumerate(_POSITIVE)] + [
    (f"218{c}", Decimal(f"-21.8{d}")) for d, c in enumerate(_NEGATIVE)
]


@pytest.mark.parametrize(("text", "expected"), OVERPUNCH_CASES)
def test_overpunch_every_sign_and_digit(text: str, expected: Decimal) -> None:
    assert decode_overpunch(text) == expected
    assert encode_overpunch(expected) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("218G", Decimal("21.87")), ("218P", Decimal("-21.87")), ("2187", Decimal("21.87")),
     ("0000057A", Decimal("5.71")), ("}", Decimal("0")), ("  100{", Decimal("10.00"))],
)  # fmt: skip
def test_overpunch_examples(text: str, expected: Decimal) -> None:
    assert decode_overpunch(text) == expected


@pytest.mark.parametrize("text", ["", "12A4", "21.8G", "ABC", "١٢٣"])
def test_overpunch_rejects_non_numbers(text: str) -> None:
    with pytest.raises(ValueError):
        decode_overpunch(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0000030000", Decimal("30.000")), ("1", Decimal("0.001")), ("0000001500", Decimal("1.500")),
     ("9999999999", Decimal("9999999.999")), ("0000000000", Decimal("0.000"))],
)  # fmt: skip
def test_quantity_has_three_implied_decimals(text: str, expected: Decimal) -> None:
    assert as_quantity(text) == expected
    assert str(as_quantity(text)) == str(expected)


# --- reading -------------------------------------------------------------------------


def test_single_transaction_maps_to_canonical_fields() -> None:
    (record,) = list(read_ncpdp(str(RESOURCES / "single.ncpdp")))
    assert record.problem is None
    assert record.number == 1
    fields = record.fields
    assert set(fields) <= set(CANONICAL_FIELDS)
    assert fields["claim_id"].startswith("NCPDP-")
    assert {k: v for k, v in fields.items() if k != "claim_id"} == {
        "bin": "610014",
        "pcn": "RXSANDBX",
        "group_id": "GRP100",
        "cardholder_id": "MBR123456",
        "patient_first_name": "JANE",
        "patient_last_name": "DOE",
        "date_of_birth": "1980-02-25",
        "service_provider_id": "1234567893",
        "date_of_service": "2026-01-05",
        "rx_number": "000000000100",
        "fill_number": 1,
        "ndc": "00003089421",
        "quantity_dispensed": Decimal("30.000"),
        "days_supply": 30,
        "prescriber_id": "1982763546",
        "prescriber_id_qualifier": "01",  # 466-EZ, kept since issue 11
        "ingredient_cost_submitted": Decimal("5.71"),
        "usual_and_customary": Decimal("10.00"),
        "gross_amount_due": Decimal("21.87"),  # 430-DU, kept since issue 11
        "plan_id": "610014-RXSANDBX-GRP100",
        "transaction_code": "B1",  # 103-A3, read since issue 17
    }


@pytest.mark.parametrize(("name", "count"), [("multi2.ncpdp", 2), ("multi4.ncpdp", 4)])
def test_multi_transaction_transmissions(name: str, count: int) -> None:
    records = list(read_ncpdp(str(RESOURCES / name)))
    assert len(records) == count
    assert all(r.problem is None and r.number == 1 for r in records)
    assert len({r.fields["claim_id"] for r in records}) == count
    assert [r.fields["rx_number"] for r in records] == [f"{100 + i:012d}" for i in range(count)]
    shared = {"cardholder_id", "patient_last_name", "date_of_birth", "bin", "plan_id"}
    for name_ in shared:
        assert len({r.fields[name_] for r in records}) == 1


def test_crlf_lines_and_line_numbers() -> None:
    records = list(read_ncpdp(str(RESOURCES / "crlf_two_lines.ncpdp")))
    assert [r.number for r in records] == [1, 2]
    assert [r.fields["date_of_service"] for r in records] == ["2026-01-05", "2026-01-06"]
    assert all(r.problem is None for r in records)


def test_transmission_without_group_separator_is_one_transaction() -> None:
    line = b.transmission(1).replace(b.GS, "")
    (record,) = parse_transmission(line)
    assert record.problem is None
    assert record.fields["rx_number"] == "000000000100"
    assert record.fields["cardholder_id"] == "MBR123456"


def test_claim_ids_are_stable_and_distinct() -> None:
    first = [r.fields["claim_id"] for r in read_ncpdp(str(RESOURCES / "multi4.ncpdp"))]
    again = [r.fields["claim_id"] for r in read_ncpdp(str(RESOURCES / "multi4.ncpdp"))]
    assert first == again
    assert len(set(first)) == 4


def test_bad_records_file_keeps_every_record_in_order() -> None:
    records = list(read_ncpdp(str(RESOURCES / "bad_records.ncpdp")))
    assert [r.number for r in records] == [1, 2, 3, 4, 5]
    assert [r.problem.code if r.problem else None for r in records] == [
        None,
        "TRUNCATED_HEADER",
        "UNKNOWN_SEGMENT",
        "INVALID_FIELD",
        None,
    ]
    assert all(has_claim_id(r) for r in records)


BAD_RECORDS = [
    ("truncated header", b.header()[:40], "TRUNCATED_HEADER", "transaction_header"),
    ("unknown segment", b.transmission(1) + b.segment("99", {"ZZ": "1"}),
     "UNKNOWN_SEGMENT", "segment"),
    ("malformed segment", b.transmission(1) + b.RS + b.FS + "XX07", "MALFORMED_SEGMENT", "segment"),
    ("non-numeric quantity", b.header() + b.segment("04", b.INSURANCE)
     + b.transaction(claim_fields=b.claim(E7="3O.5")), "INVALID_FIELD", "quantity_dispensed"),
    ("non-numeric days supply", b.header() + b.transaction(claim_fields=b.claim(D5="3O")),
     "INVALID_FIELD", "days_supply"),
    ("bad date of birth", b.header() + b.segment("01", {"C4": "19801345"}) + b.transaction(),
     "INVALID_FIELD", "date_of_birth"),
    ("bad date of service", b.transmission(1, dos="2026AB05"), "INVALID_FIELD", "date_of_service"),
    ("bad amount", b.header() + b.transaction().replace("0000057A", "00X0057A"),
     "INVALID_FIELD", "ingredient_cost_submitted"),
    ("not an NDC", b.header() + b.transaction(claim_fields=b.claim(E1="09")),
     "PRODUCT_NOT_NDC", "ndc"),
    ("no claim segment", b.header() + b.segment("04", b.INSURANCE),
     "MISSING_SEGMENT", "claim_segment"),
    ("count mismatch", b.header(count=3) + b.transaction() + b.transaction("7"),
     "TRANSACTION_COUNT_MISMATCH", "transaction_count"),
    ("eligibility", b.transmission(1, code="E1"), "UNSUPPORTED_TRANSACTION", "transaction_code"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "code", "field"), [case[1:] for case in BAD_RECORDS], ids=[c[0] for c in BAD_RECORDS]
)
def test_bad_record_is_a_record_with_a_problem(line: str, code: str, field: str) -> None:
    records = parse_transmission(line, "x.ncpdp", 7)
    assert records
    for record in records:
        assert isinstance(record, Record)
        assert record.number == 7
        assert record.problem is not None
        assert (record.problem.code, record.problem.field) == (code, field)
        assert has_claim_id(record)
        for secret in ("3O.5", "19801345", "2026AB05", "00X0057A", "MBR123456", "JANE"):
            assert secret not in record.problem.message


@pytest.mark.parametrize("code", ["B1", "B2", "B3"])
def test_billing_reversal_and_rebill_are_read_with_their_transaction_code(code: str) -> None:
    (record,) = parse_transmission(b.transmission(1, code=code), "x.ncpdp", 3)
    assert record.problem is None
    assert record.fields["transaction_code"] == code


def test_reversal_with_only_the_claim_segment_is_read() -> None:
    """A D.0 B2 carries the claim segment's identity (402-D2, 403-D3, 407-D7): no
    pricing, prescriber, quantity or days supply, no patient segment."""
    reversal = b.claim(E7="", D5="")
    del reversal["E7"], reversal["D5"]
    line = b.header(code="B2") + b.segment("04", {"C1": "GRP100"}) + b.GS
    line += b.segment("07", reversal)
    (record,) = parse_transmission(line, "x.ncpdp", 1)
    assert record.problem is None
    assert record.fields["transaction_code"] == "B2"
    assert "quantity_dispensed" not in record.fields
    billing = b.header() + b.segment("04", b.INSURANCE) + b.transaction()
    (paid,) = parse_transmission(billing, "x.ncpdp", 1)
    assert record.fields["claim_id"] == paid.fields["claim_id"]  # the same claim's identity


def test_bad_record_keeps_what_it_could_read() -> None:
    line = b.header() + b.segment("04", b.INSURANCE) + b.transaction(claim_fields=b.claim(E7="x"))
    (record,) = parse_transmission(line)
    assert record.fields["cardholder_id"] == "MBR123456"
    assert record.fields["ndc"] == "00003089421"
    assert "quantity_dispensed" not in record.fields


def test_not_ncpdp_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        list(read_ncpdp(_write(tmp_path, "claim_id,bin", "1,610014")))
    assert err.value.line == 1


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(read_ncpdp(str(tmp_path / "absent.ncpdp")))


def test_blank_lines_are_skipped_and_empty_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty file: no claims"):
        list(read_ncpdp(_write(tmp_path, "")))
    records = list(read_ncpdp(_write(tmp_path, "", b.transmission(1), "")))
    assert [r.number for r in records] == [2]


@pytest.mark.parametrize(
    ("head", "expected"),
    [(b.header().encode(), True), (b.transmission(2).encode(), True), (b"ISA*00*", False),
     (b"610014D1B1", False), (b"61001", False), (b'{"claim_id": 1}', False)],
)  # fmt: skip
def test_sniff_ncpdp(head: bytes, expected: bool) -> None:
    assert sniff_ncpdp(head) is expected


# --- responses -----------------------------------------------------------------------


def test_paid_response() -> None:
    line = (
        b.response_header("A")
        + b.segment("20", {"F4": "THANK YOU"})
        + b.GS
        + b.segment("21", {"AN": "P", "F3": "AUTH0001"})
        + b.segment("22", {"EM": "1", "D2": "000000000100"})
        + b.segment("23", {"F5": "0000100{", "F9": "0000218G"})
    )
    (response,) = parse_response(line.encode())
    assert response.header_status is HeaderResponseStatus.ACCEPTED
    assert response.status is TransactionResponseStatus.PAID
    assert response.reject_codes == ()
    assert response.authorization_number == "AUTH0001"
    assert response.message == "THANK YOU"
    assert response.rx_number == "000000000100"
    assert response.patient_pay_amount == Decimal("10.00")
    assert response.total_amount_paid == Decimal("21.87")


def test_rejected_response_with_repeating_reject_codes() -> None:
    status = (
        b.RS
        + b.FS
        + "AM21"
        + b.FS
        + "ANR"
        + b.FS
        + "FA3"
        + "".join(b.FS + "FB" + code for code in ("75", "76", "MR"))
    )
    line = b.response_header("A") + b.GS + status + b.FS + "FQPA REQUIRED"
    (response,) = parse_response(line)
    assert response.status is TransactionResponseStatus.REJECTED
    assert response.reject_count == 3
    assert response.reject_codes == ("75", "76", "MR")
    assert response.additional_messages == ("PA REQUIRED",)


def test_response_with_two_transactions() -> None:
    line = (
        b.response_header("A", count=2)
        + b.GS
        + b.segment("21", {"AN": "P"})
        + b.GS
        + b.segment("21", {"AN": "R", "FA": "1", "FB": "79"})
    )
    responses = parse_response(line)
    assert [r.transaction_index for r in responses] == [0, 1]
    assert [r.status for r in responses] == [
        TransactionResponseStatus.PAID,
        TransactionResponseStatus.REJECTED,
    ]
    assert responses[1].reject_codes == ("79",)


def test_rejected_header_without_transactions() -> None:
    line = b.response_header("R") + b.segment("20", {"F4": "M/I BIN"})
    (response,) = parse_response(line + "\r\n")
    assert response.header_status is HeaderResponseStatus.REJECTED
    assert response.status is None
    assert response.message == "M/I BIN"


@pytest.mark.parametrize(
    "line",
    [
        "D0B11A",
        b.response_header("X"),
        b.response_header("A") + b.GS + b.segment("21", {"AN": "Z"}),
        b.response_header("A") + b.GS + b.segment("07", {"D2": "1"}),
        b.response_header("A") + b.GS + b.segment("21", {"FA": "x"}),
    ],
    ids=["short", "bad header status", "bad status", "request segment", "bad count"],
)
def test_unreadable_response_is_an_input_error(line: str) -> None:
    with pytest.raises(InputError):
        parse_response(line)


# --- issue 11: nothing lost, identity ids, repeated and missing fields ---------------

#: (case, transmission, expected problem codes of the records, in order). Source:
#: NCPDP Telecommunication Standard D.0, transmission structure (header, then
#: transmission-level patient/insurance segments, then each transaction opened by
#: the group separator 0x1D; 109-A9 the count) and the Data Dictionary for
#: 436-E1 (mandatory in the claim segment) and field repetition.
NOTHING_LOST = [
    ("separator with no transaction", b.header() + b.segment("04", b.INSURANCE) + b.GS,
     ["MISSING_SEGMENT"]),
    ("header only", b.header(), ["MISSING_SEGMENT"]),
    ("empty groups", b.header() + b.GS + b.RS + b.GS, ["MISSING_SEGMENT"]),
    ("claim before the first separator",
     b.header(count=1) + b.segment("07", b.claim("000000000007")) + b.transaction(),
     ["SEGMENT_OUTSIDE_GROUP", None]),
    ("claim before the separator, no group after",
     b.header() + b.segment("07", b.claim()) + b.GS, ["SEGMENT_OUTSIDE_GROUP"]),
    ("436-E1 missing", b.header() + b.transaction(claim_fields={
        k: v for k, v in b.claim().items() if k != "E1"}), ["MISSING_FIELD"]),
    ("407-D7 twice", b.header() + b.transaction(claim_fields={**b.claim()}).replace(
        b.FS + "D7", b.FS + "D700003089421" + b.FS + "D7", 1), ["REPEATED_FIELD"]),
    ("claim segment twice", b.header() + b.GS + b.segment("07", b.claim())
     + b.segment("07", b.claim("000000000009")), ["REPEATED_FIELD"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("line", "codes"), [c[1:] for c in NOTHING_LOST], ids=[c[0] for c in NOTHING_LOST]
)
def test_every_transmission_yields_its_transactions(line: str, codes: list[str | None]) -> None:
    records = parse_transmission(line, "x.ncpdp", 3)
    assert [r.problem.code if r.problem else None for r in records] == codes
    assert all(has_claim_id(r) and r.number == 3 for r in records)


def test_blank_pcn_is_read_as_absent() -> None:
    # Many D.0 payer sheets: "Processor Control Number: not required" (104-A4
    # situational); the validate step treats PCN as optional for NCPDP.
    (record,) = parse_transmission(b.transmission(1, pcn=""))
    assert record.problem is None
    assert "pcn" not in record.fields
    assert record.fields["plan_id"] == "610014--GRP100"


def test_claim_id_is_the_claims_identity_not_its_position() -> None:
    # BIN 101-A1, PCN 104-A4, 201-B1, 401-D1, 402-D2, 403-D3: a resubmission in
    # another position (or another transmission) gets the same Idempotency-Key.
    two = parse_transmission(
        b.header(count=2) + b.transaction("000000000001") + b.transaction("000000000002")
    )
    swapped = parse_transmission(
        b.header(count=2) + b.transaction("000000000002") + b.transaction("000000000001")
    )
    alone = parse_transmission(b.header() + b.transaction("000000000002"))
    ids = {r.fields["rx_number"]: r.fields["claim_id"] for r in two}
    assert ids == {r.fields["rx_number"]: r.fields["claim_id"] for r in swapped}
    assert alone[0].fields["claim_id"] == ids["000000000002"]
    other_fill = parse_transmission(
        b.header() + b.transaction(claim_fields=b.claim("000000000002", D3="02"))
    )
    assert other_fill[0].fields["claim_id"] != ids["000000000002"]


def test_prescriber_qualifier_is_kept() -> None:
    line = (
        b.header()
        + b.GS
        + b.segment("07", b.claim())
        + b.segment("03", {"EZ": "12", "DB": "AB1234563"})
    )
    (record,) = parse_transmission(line)
    assert (record.fields["prescriber_id_qualifier"], record.fields["prescriber_id"]) == (
        "12",
        "AB1234563",
    )


def test_invalid_utf8_line_is_quarantined(tmp_path: Path) -> None:
    path = tmp_path / "bad.ncpdp"
    good = b.transmission(1).encode()
    bad = b.transmission(2).replace("JANE", "J\udcffNE").encode("utf-8", "surrogateescape")
    path.write_bytes(good + b"\n" + bad + b"\n")
    records = list(read_ncpdp(str(path)))
    assert [r.problem.code if r.problem else None for r in records] == [
        None,
        "MALFORMED_RECORD",
        "MALFORMED_RECORD",
    ]
    assert records[1].problem is not None and "not UTF-8" in records[1].problem.message


#: D.0 response segments AM20-AM29 (NCPDP Telecommunication D.0 response
#: structure; AM28 COB/other payers comes with reject 41, AM29 patient).
def test_response_ignores_segments_it_does_not_read() -> None:
    line = (
        b.response_header("A")
        + b.GS
        + b.segment("21", {"AN": "R", "FA": "1", "FB": "41"})
        + b.segment("28", {"NT": "1", "5C": "01"})
        + b.segment("29", {"CA": "JANE"})
    )
    (response,) = parse_response(line)
    assert response.status is TransactionResponseStatus.REJECTED
    assert response.reject_codes == ("41",)


@pytest.mark.parametrize(
    "line",
    [b.response_header("A") + b.GS + b.segment("21", {"AN": "R", "FA": "2", "FB": "41"}),
     b.response_header("A", count=2) + b.GS + b.segment("21", {"AN": "P"})],
    ids=["510-FA vs 511-FB", "109-A9 vs groups"],
)  # fmt: skip
def test_response_counts_are_checked(line: str) -> None:
    with pytest.raises(InputError):
        parse_response(line)


# --- issue 16: compounds, ids without 402-D2, AM02, the person ---------------------


def _compound(*ingredients: tuple[str, str, str, str], count: int | None = None) -> str:
    """Segment 10 with 447-EC and, per ingredient, 488-RE, 489-TE, 448-ED, 449-EE."""
    fields = [("EF", "10"), ("EG", "1"), ("EC", str(len(ingredients) if count is None else count))]
    for qualifier, ndc, quantity, cost in ingredients:
        fields += [("RE", qualifier), ("TE", ndc), ("ED", quantity), ("EE", cost)]
    return b.RS + b.FS + "AM10" + "".join(b.FS + k + v for k, v in fields)


def _one(*segments: str) -> str:
    common = b.segment("01", b.PATIENT) + b.segment("04", b.INSURANCE)
    return b.header() + common + b.GS + "".join(segments)


COMPOUND_CLAIM = b.segment("07", b.claim(E1="00", D7="0"))
INGREDIENTS = (
    ("03", "00003089421", "0000015000", "0000120{"),
    ("03", "00002143380", "0000100000", "0000003E"),
)


def test_compound_claim_carries_its_ingredients() -> None:
    (record,) = parse_transmission(_one(COMPOUND_CLAIM, _compound(*INGREDIENTS)))
    assert record.problem is None
    assert record.fields["ndc"] == "00003089421"  # the first ingredient is the claim's NDC
    assert record.fields["compound_ingredients"] == [
        {"ndc": "00003089421", "quantity": Decimal("15.000"), "cost": Decimal("12.00")},
        {"ndc": "00002143380", "quantity": Decimal("100.000"), "cost": Decimal("0.35")},
    ]


@pytest.mark.parametrize(
    ("segments", "code"),
    [
        ((COMPOUND_CLAIM,), "PRODUCT_NOT_NDC"),  # 00 without segment 10: nothing to send
        ((COMPOUND_CLAIM, _compound(*INGREDIENTS, count=3)), "INVALID_FIELD"),
        ((COMPOUND_CLAIM, _compound(("09", "12345", "0000001000", "0000001{"))), "PRODUCT_NOT_NDC"),
    ],
    ids=["no segment 10", "447-EC disagrees", "ingredient not an NDC"],
)
def test_bad_compound_is_quarantined(segments: tuple[str, ...], code: str) -> None:
    (record,) = parse_transmission(_one(*segments))
    assert record.problem is not None and record.problem.code == code


def test_transactions_without_rx_number_get_distinct_stable_ids() -> None:
    first = b.segment("07", {k: v for k, v in b.claim().items() if k != "D2"})
    second = b.segment("07", {k: v for k, v in b.claim(D7="00002143380").items() if k != "D2"})
    line = b.header(count=2) + b.segment("04", b.INSURANCE) + b.GS + first + b.GS + second
    records = parse_transmission(line)
    assert [r.problem for r in records] == [None, None]
    ids = [claim_id_of(r) for r in records]
    assert len(set(ids)) == 2 and all(i.startswith("NCPDP-") for i in ids)
    assert ids == [claim_id_of(r) for r in parse_transmission(line)]  # stable across runs
    assert all("MBR123456" not in i for i in ids)  # keyed: the cardholder is not readable


def test_pharmacy_segment_before_the_first_group_adds_no_row() -> None:
    line = b.header() + b.segment("02", {"B1": "1234567893"}) + b.segment("04", b.INSURANCE)
    records = parse_transmission(line + b.GS + b.segment("07", b.claim()))
    assert len(records) == 1 and records[0].problem is None


def test_person_code_and_relationship_are_read() -> None:
    insurance = b.segment("04", {**b.INSURANCE, "C3": "002"})
    patient = b.segment("01", {**b.PATIENT, "C6": "2"})
    (record,) = parse_transmission(
        b.header() + patient + insurance + b.GS + b.segment("07", b.claim())
    )
    assert (record.fields["person_code"], record.fields["patient_relationship_code"]) == (
        "002",
        "2",
    )
