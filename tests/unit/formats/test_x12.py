"""The X12 837P/837I reader, over every LinuxForHealth sample and constructed variants."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from config import get_settings
from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.claims.phi import PhiTokenizer
from rxfleet.errors import ConfigError, InputError
from rxfleet.formats.base import Record
from rxfleet.formats.x12 import (
    Delimiters,
    claim_identity,
    iter_segments,
    load_payer_routes,
    parse_isa,
    read_x12,
    sniff_x12,
)
from tests.unit.formats.ids import claim_id_of, has_claim_id

RESOURCES = Path(__file__).resolve().parents[2] / "resources" / "x12"
SAMPLES = sorted(p for p in RESOURCES.glob("837_*/*") if p.is_file())
ROUTES = {
    "PLANID12345": {"bin": "610014", "pcn": "RXSANDBX", "group_id": "GRP100", "plan_id": "P1"}
}

_EXAMPLE10_LINES = [
    ("00004196501", "7.00"),
    ("63323024910", "14.00"),
    ("00338004938", "7.00"),
    ("08290033010", "14.00"),
    ("08290038005", "7.00"),
]
#: Drug lines (NDC, quantity) of every sample; every other sample has none.
EXPECTED = {
    "837_005010X222A2/demo.drug.example10.1.837": [("00026063512", "10.00")],
    "837_005010X222A2/demo.drug.example10.2.837": _EXAMPLE10_LINES,
    "837_005010X222A2/demo.drug.example10.3.837": _EXAMPLE10_LINES,
}
EXAMPLE10_1 = RESOURCES / "837_005010X222A2" / "demo.drug.example10.1.837"
EXAMPLE10_2 = RESOURCES / "837_005010X222A2" / "demo.drug.example10.2.837"


def _x12_id(clm01: str, lx01: str, service: str, rx: str) -> str:
    keyed = claim_identity("1234567893", clm01, lx01, service, rx)  # billing provider NM109
    return claim_id_of(Record("", 0, keyed_id=keyed))


#: The id of the one drug line of example 10.1 (billing provider, CLM01, LX01, DOS, no REF*XZ).
EXAMPLE10_1_ID = _x12_id("CLMNO12345", "2", "20040711", "")


def _rel(path: Path) -> str:
    return path.relative_to(RESOURCES).as_posix()


def _write(tmp_path: Path, text: str, name: str = "claims.837") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return str(path)


def _fix_se(text: str, terminator: str = "~") -> str:
    """``text`` with each SE01 recounted (tests that insert segments keep the envelope)."""
    out: list[str] = []
    count = 0
    for segment in text.split(terminator):
        tag = segment.strip("\r\n").split("*")[0]
        if tag == "ST":
            count = 0
        count += 1
        if tag == "SE":
            parts = segment.split("*")
            parts[1] = str(count)
            segment = "*".join(parts)
        out.append(segment)
    return terminator.join(out)


def test_all_samples_are_present() -> None:
    assert len(SAMPLES) == 33
    assert (RESOURCES / "LICENSE").is_file()
    assert (RESOURCES / "README.md").is_file()


@pytest.mark.parametrize("path", SAMPLES, ids=_rel)
def test_every_sample_yields_its_drug_lines(path: Path) -> None:
    expected = EXPECTED.get(_rel(path), [])
    if not expected:  # one rule for every format: no claim at all is an empty file
        with pytest.raises(InputError, match="empty file: no claims"):
            list(read_x12(str(path), ROUTES))
        return
    records = list(read_x12(str(path), ROUTES))
    assert [(r.fields["ndc"], r.fields["quantity_dispensed"]) for r in records] == [
        (ndc, Decimal(quantity)) for ndc, quantity in expected
    ]
    for record in records:
        assert isinstance(record, Record)
        assert record.problem is None
        assert set(record.fields) <= set(CANONICAL_FIELDS)
    assert len({claim_id_of(r) for r in records}) == len(records)


def test_drug_line_maps_to_canonical_fields() -> None:
    (record,) = list(read_x12(str(EXAMPLE10_1), ROUTES))
    assert record.source == str(EXAMPLE10_1)
    assert record.number == 31  # the LIN segment, counting ISA as 1
    assert claim_id_of(record) == EXAMPLE10_1_ID
    assert record.fields == {
        "bin": "610014",
        "pcn": "RXSANDBX",
        "group_id": "GRP01020102",  # the file's SBR03 (2000B) wins over the payer table
        "plan_id": "P1",
        "cardholder_id": "MBRID12345",
        "patient_first_name": "Steve",
        "patient_last_name": "Vaughn",
        "date_of_birth": "1943-05-01",
        "date_of_service": "2004-07-11",
        "ndc": "00026063512",
        "quantity_dispensed": Decimal("10.00"),
        "prescriber_id": "1122333341",
        "service_provider_id": "1234567893",
        "gross_amount_due": Decimal("53.37"),  # SV102 line charge -> 430-DU
        "unit_of_measure": "ML",  # CTP05 ML -> NCPDP 600-28 ML
        "pos": "11",
        "patient_relationship_code": "1",  # no patient loop: the subscriber (306-C6 1)
        "transaction_code": "B1",  # CLM05-3 1: an original claim
    }


def test_line_level_ordering_provider_and_rx_number() -> None:
    records = list(read_x12(str(EXAMPLE10_2), ROUTES))
    assert [r.fields["rx_number"] for r in records] == [
        "2530001", "2530001", "2530001", "2530002", "2530003",
    ]  # fmt: skip
    assert {r.fields["prescriber_id"] for r in records} == {"1112223338"}
    assert {r.fields["date_of_service"] for r in records} == {"2004-02-01"}  # start of RD8
    assert [claim_id_of(r) for r in records] == [
        _x12_id("CLMNO12345", str(n), "20040201", rx)
        for n, rx in zip(range(2, 7), ["2530001"] * 3 + ["2530002", "2530003"], strict=True)
    ]
    assert all(
        claim_id_of(r).startswith("X12-") and "CLMNO12345" not in claim_id_of(r) for r in records
    )
    assert [r.number for r in records] == [31, 39, 47, 55, 63]


def test_claim_ids_are_stable_across_runs() -> None:
    first = [claim_id_of(r) for r in read_x12(str(EXAMPLE10_2), ROUTES)]
    assert first == [claim_id_of(r) for r in read_x12(str(EXAMPLE10_2), ROUTES)]


def test_repeated_clm01_in_one_set_is_told_apart_by_the_service_not_its_position(
    tmp_path: Path,
) -> None:
    # issue 16: a repeat used to get "-S{segment of the LIN}", a position. An exact
    # repeat is the same claim (the run-wide DUPLICATE_CLAIM_ID check catches it);
    # the same CLM01 for another prescription is another claim, whatever its place.
    text = EXAMPLE10_1.read_text()
    claim = text[text.index("CLM*") : text.index("SE*")]
    other = claim.replace("LIN**N4*00026063512~", "LIN**N4*00026063512~REF*XZ*RX1001~")
    exact = [
        claim_id_of(r)
        for r in read_x12(_write(tmp_path, _fix_se(text.replace(claim, claim * 2))), ROUTES)
    ]
    assert exact == [EXAMPLE10_1_ID, EXAMPLE10_1_ID]
    ids = [
        claim_id_of(r)
        for r in read_x12(_write(tmp_path, _fix_se(text.replace(claim, claim + other))), ROUTES)
    ]
    assert ids[0] == EXAMPLE10_1_ID and ids[1] != ids[0]
    moved = text.replace(claim, "NTE*ADD*NOTE~" + claim + other)  # later segments, same ids
    assert [claim_id_of(r) for r in read_x12(_write(tmp_path, _fix_se(moved)), ROUTES)] == ids


def test_payer_without_route_is_quarantined() -> None:
    (record,) = list(read_x12(str(EXAMPLE10_1), {}))
    assert record.problem is not None
    assert (record.problem.code, record.problem.field) == ("NO_PAYER_ROUTE", "payer_id")
    assert "PLANID12345" not in record.problem.message
    assert "bin" not in record.fields
    assert record.fields["ndc"] == "00026063512"


def test_the_bundled_payer_routes_route_the_sample() -> None:
    (record,) = list(read_x12(str(EXAMPLE10_1), load_payer_routes(get_settings().payer_routes)))
    assert record.problem is None
    assert record.fields["plan_id"] == "PLAN-COMM"


def _redelimit(text: str, element: str, component: str, terminator: str) -> str:
    table = str.maketrans({"*": element, ":": component, "~": terminator, "\n": None})
    return text.translate(table)


@pytest.mark.parametrize(
    ("element", "component", "terminator", "newline"),
    [("|", "<", "!", ""), ("^", ">", "'", "\r\n"), ("\x1d", "\x1f", "\x1e", "\n"),
     ("*", ":", "~", "")],
    ids=["pipe", "caret-crlf", "control-chars", "no-line-breaks"],
)  # fmt: skip
def test_delimiters_come_from_the_isa(
    tmp_path: Path, element: str, component: str, terminator: str, newline: str
) -> None:
    text = _redelimit(EXAMPLE10_2.read_text(), element, component, terminator)
    text = text.replace(terminator, terminator + newline)
    if element == "^":  # ISA11 repetition separator would clash: use another
        text = text.replace("^^^00501", "^`^00501", 1)
    records = list(read_x12(_write(tmp_path, text), ROUTES))
    assert [r.fields["ndc"] for r in records] == [ndc for ndc, _ in _EXAMPLE10_LINES]
    assert all(r.problem is None for r in records)


def test_parse_isa_reads_all_four_delimiters() -> None:
    assert parse_isa(EXAMPLE10_1.read_text()) == Delimiters("*", ":", "~", "^")
    isa_4010 = (RESOURCES / "837_004010X098A1" / "patient-is-subscriber.837").read_text()
    assert parse_isa(isa_4010).element == "*"


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
def test_segments_split_the_same_whatever_the_chunking(size: int) -> None:
    text = EXAMPLE10_2.read_text()
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    segments = list(iter_segments(chunks, "~"))
    assert segments == [s.strip("\n") for s in text.split("~") if s.strip("\n")]
    assert segments[0].startswith("ISA*") and segments[-1].startswith("IEA*")


def test_patient_loop_supplies_names_and_birth_date(tmp_path: Path) -> None:
    text = _fix_se(
        EXAMPLE10_1.read_text().replace(
            "CLM*",
            "HL*3*2*23*0~\nPAT*19~\nNM1*QC*1*Doe*Jane~\nDMG*D8*20100101*F~\nCLM*",
            1,
        )
    )
    (record,) = list(read_x12(_write(tmp_path, text), ROUTES))
    assert record.problem is None
    assert record.fields["cardholder_id"] == "MBRID12345"
    assert (record.fields["patient_first_name"], record.fields["patient_last_name"]) == (
        "Jane",
        "Doe",
    )
    assert record.fields["date_of_birth"] == "2010-01-01"


def test_other_payer_loop_after_claim_does_not_override_the_payer(tmp_path: Path) -> None:
    text = _fix_se(
        EXAMPLE10_1.read_text().replace(
            "HI*BK:03591~",
            "HI*BK:03591~\nSBR*S*01~\nNM1*IL*1*Other*Sub****MI*X1~\nNM1*PR*2*X*****PI*X2~",
        )
    )
    (record,) = list(read_x12(_write(tmp_path, text), ROUTES))
    assert record.problem is None
    assert record.fields["cardholder_id"] == "MBRID12345"


BAD_LINES = [
    ("CTP****10.00*ML~", "CTP****1O.00*ML~", "quantity_dispensed"),
    ("CTP****10.00*ML~", "CTP****10.00*XX~", "unit_of_measure"),
    ("SV1*HC:J1550*53.37*", "SV1*HC:J1550*53,37*", "gross_amount_due"),
    ("DTP*472*D8*20040711~\nAMT", "DTP*472*D8*20041311~\nAMT", "date_of_service"),
    ("DMG*D8*19430501*M~", "DMG*D8*1943-05-01*M~", "date_of_birth"),
]


@pytest.mark.parametrize(("old", "new", "field"), BAD_LINES, ids=[c[2] + c[1] for c in BAD_LINES])
def test_bad_drug_line_is_a_record_with_a_problem(
    tmp_path: Path, old: str, new: str, field: str
) -> None:
    text = EXAMPLE10_1.read_text()
    assert old in text
    (record,) = list(read_x12(_write(tmp_path, text.replace(old, new)), ROUTES))
    assert record.problem is not None
    assert (record.problem.code, record.problem.field) == ("INVALID_FIELD", field)
    service = "20041311" if field == "date_of_service" else "20040711"  # part of the identity
    assert claim_id_of(record) == _x12_id("CLMNO12345", "2", service, "")
    for secret in ("1O.00", "53,37", "20041311", "1943-05-01", "XX"):
        assert secret not in record.problem.message


def test_truncated_file_still_emits_the_open_line(tmp_path: Path) -> None:
    text = EXAMPLE10_1.read_text()
    cut = text[: text.index("SE*")]
    (record,) = list(read_x12(_write(tmp_path, cut), ROUTES))
    assert record.fields["quantity_dispensed"] == Decimal("10.00")


@pytest.mark.parametrize(
    "text",
    ["", "claim_id,bin\n1,610014\n", "ISA*00*short~", "GS*HC*1~ST*837*1~", "ISA" + "*" * 20],
    ids=["empty", "csv", "short-isa", "no-isa", "no-delimiters"],
)
def test_not_x12_is_an_input_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(InputError):
        list(read_x12(_write(tmp_path, text), ROUTES))


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(read_x12(str(tmp_path / "absent.837"), ROUTES))


@pytest.mark.parametrize(
    ("head", "expected"),
    [(EXAMPLE10_1.read_bytes()[:4096], True),
     (b"\xef\xbb\xbf\r\n" + EXAMPLE10_1.read_bytes(), True), (b"ISA*00*", False),
     (b"610014D0B1", False), (b"", False)],
)  # fmt: skip
def test_sniff_x12(head: bytes, expected: bool) -> None:
    assert sniff_x12(head) is expected


def test_load_payer_routes(tmp_path: Path) -> None:
    routes = load_payer_routes(Path(__file__).resolve().parents[3] / "config" / "payer_routes.json")
    assert routes["PLANID12345"]["bin"] == "610014"
    bad = tmp_path / "routes.json"
    bad.write_text("{}")
    with pytest.raises(ConfigError):
        load_payer_routes(bad)


def test_same_claim_in_two_transaction_sets_has_one_id(tmp_path: Path) -> None:
    # Issue 11: the id is the claim's identity (billing provider, CLM01, LX01), not
    # its position: the copy in the second set is the same claim, and the run-wide
    # DUPLICATE_CLAIM_ID check catches it (before: "-T2" made it a new claim).
    source = RESOURCES / "837_005010X222A2" / "demo.drug.example10.1.837"
    text = source.read_text()
    st_start, se_end = text.index("ST*"), text.index("GE*")
    body = text[st_start:se_end]
    doubled = text[:se_end] + body + text[se_end:]  # the same transaction set twice
    path = tmp_path / "two_sets.837"
    path.write_text(doubled)
    ids = [claim_id_of(r) for r in read_x12(str(path), ROUTES)]
    assert len(ids) == 2 and len(set(ids)) == 1


# --- issue 11: interchanges, drug lines, envelopes, units, ids ---------------------


def _records(tmp_path: Path, text: str) -> list[Record]:
    return list(read_x12(_write(tmp_path, text), ROUTES))


def _codes(records: list[Record]) -> list[str | None]:
    return [r.problem.code if r.problem else None for r in records]


def test_second_interchange_with_other_separators_is_read(tmp_path: Path) -> None:
    # ASC X12 ISA: the delimiters are declared by each interchange (ISA byte 4,
    # ISA16 and the character after it); a file may hold several interchanges.
    first = EXAMPLE10_1.read_text()
    second = _redelimit(EXAMPLE10_2.read_text(), "|", "<", "!").replace("^", "`", 1)
    records = _records(tmp_path, first + "\n" + second)
    assert len(records) == 1 + len(_EXAMPLE10_LINES)
    assert _codes(records) == [None] * len(records)


#: (case, old, new, expected codes). Source: 837P TR3 005010X222A2 2410 LIN02
#: (N4 = NDC 5-4-2; EN/EO/HI/ON/UK/UP are other product ids), CTP05-1 code list,
#: and the envelope rules of TR3 appendix B (SE01 count incl. ST and SE, SE02 =
#: ST02, GE02 = GS06, IEA02 = ISA13, GE01 = sets, IEA01 = groups).
ONE_CLAIM_CASES = [
    ("LIN not N4", "LIN**N4*00026063512~", "LIN**UP*012345678905~", ["PRODUCT_NOT_NDC"]),
    ("SE01 wrong", "SE*", "SE*1", ["SEGMENT_COUNT_MISMATCH"]),
    ("SE02 wrong", "SE*31*0711~", "SE*31*0712~", ["CONTROL_NUMBER_MISMATCH"]),
    ("GE01 wrong", "GE*1*", "GE*2*", ["GROUP_COUNT_MISMATCH"]),
    ("IEA02 wrong", "IEA*1*", "IEA*1*9", ["CONTROL_NUMBER_MISMATCH"]),
    ("no SE", "SE*", "XX*", ["MISSING_TRAILER"]),
]


@pytest.mark.parametrize(
    ("old", "new", "codes"), [c[1:] for c in ONE_CLAIM_CASES], ids=[c[0] for c in ONE_CLAIM_CASES]
)
def test_one_claim_cases(tmp_path: Path, old: str, new: str, codes: list[str]) -> None:
    text = EXAMPLE10_1.read_text()
    assert old in text
    records = _records(tmp_path, text.replace(old, new, 1))
    assert _codes(records) == codes
    assert all(has_claim_id(r) for r in records)


@pytest.mark.parametrize(
    ("frequency", "code"),
    [("1", "B1"), ("7", "B3"), ("8", "B2")],
    ids=["original", "replace", "void"],
)
def test_claim_frequency_code_is_the_transaction_code(
    tmp_path: Path, frequency: str, code: str
) -> None:
    text = EXAMPLE10_1.read_text().replace("*11:B:1*", f"*11:B:{frequency}*", 1)
    (record,) = _records(tmp_path, text)
    assert record.problem is None
    assert record.fields["transaction_code"] == code
    assert claim_id_of(record) == EXAMPLE10_1_ID  # a void or replacement names the same claim


def test_blank_frequency_code_leaves_the_default_and_another_is_refused(tmp_path: Path) -> None:
    text = EXAMPLE10_1.read_text()
    (blank,) = _records(tmp_path, text.replace("*11:B:1*", "*11:B*", 1))
    assert blank.problem is None and "transaction_code" not in blank.fields
    (other,) = _records(tmp_path, text.replace("*11:B:1*", "*11:B:5*", 1))
    assert other.problem is not None
    assert (other.problem.code, other.problem.field) == (
        "INVALID_TRANSACTION_CODE",
        "transaction_code",
    )


def test_missing_iea_and_ge_quarantine(tmp_path: Path) -> None:
    text = EXAMPLE10_1.read_text()
    records = _records(tmp_path, text[: text.index("GE*")])
    assert _codes(records) == ["MISSING_TRAILER"]


#: CTP05 -> NCPDP Billing Unit Standard (600-28: EA, GM, ML), exact conversions.
UNITS = [
    ("UN", "10.00", "EA", Decimal("10.00")),
    ("ML", "10.00", "ML", Decimal("10.00")),
    ("GR", "10.00", "GM", Decimal("10.00")),
    ("ME", "500", "GM", Decimal("0.5")),  # 500 mg = 0.5 g, exact
    ("F2", "300", "EA", Decimal("300")),  # insulin: international units, billed as a count
]


@pytest.mark.parametrize(("unit", "quantity", "billing", "expected"), UNITS)
def test_units_convert_to_billing_units(
    tmp_path: Path, unit: str, quantity: str, billing: str, expected: Decimal
) -> None:
    text = EXAMPLE10_1.read_text().replace("CTP****10.00*ML~", f"CTP****{quantity}*{unit}~")
    (record,) = _records(tmp_path, text)
    assert record.problem is None
    assert record.fields["unit_of_measure"] == billing
    assert record.fields["quantity_dispensed"] == expected


def test_invalid_utf8_quarantines_the_claim(tmp_path: Path) -> None:
    path = tmp_path / "bad.837"
    path.write_bytes(EXAMPLE10_1.read_bytes().replace(b"Vaughn", b"Vaug\xffn"))
    (record,) = list(read_x12(str(path), ROUTES))
    assert record.problem is not None
    assert record.problem.code == "MALFORMED_RECORD" and "not UTF-8" in record.problem.message
    assert all("\udcff" not in str(v) for v in record.fields.values())


def test_claim_id_is_a_keyed_token_without_clm01_in_clear() -> None:
    keyed = claim_identity("1234567893", "ACCT-000123", "1", "20260101", "RX1")
    claim_id = claim_id_of(Record("", 0, keyed_id=keyed))
    assert re.fullmatch(r"X12-[0-9a-f]{32}", claim_id)
    assert "ACCT" not in claim_id and "000123" not in claim_id
    other_provider = claim_identity("1987654325", "ACCT-000123", "1", "20260101", "RX1")
    assert claim_id_of(Record("", 0, keyed_id=other_provider)) != claim_id
    other_key = PhiTokenizer(b"q" * 32).claim_id(keyed.prefix, keyed.parts)
    assert other_key != claim_id  # keyed: not a plain hash anyone can recompute
    assert claim_id_of(Record("", 0, keyed_id=keyed)) == claim_id  # stable under one key


def test_patient_loop_gives_the_relationship(tmp_path: Path) -> None:
    text = EXAMPLE10_1.read_text()
    hl = text.index("CLM*")
    patient = "HL*3*2*23*0~PAT*19~NM1*QC*1*DOE*JANE~DMG*D8*20100505*F~"
    (record,) = _records(tmp_path, _fix_se(text[:hl] + patient + text[hl:]))
    assert record.fields["patient_relationship_code"] == "3"  # PAT01 19 child -> 306-C6 3
