"""Property tests: records out == claims in, for generated NCPDP and X12 files under mutations.

NCPDP D.0: a claim is a transaction (a non-empty group after 0x1D, or the body of
a transmission without group separator); a transmission with none still yields
one record; transaction segments before the first 0x1D are one more record.
X12 837 (005010X222A2 loop 2410): a claim is a service line with a ``LIN``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxfleet.errors import InputError
from rxfleet.formats.ncpdp import parse_transmission, read_ncpdp
from rxfleet.formats.x12 import read_x12
from tests.unit.formats import ncpdp_build as b
from tests.unit.formats.ids import has_claim_id

FAST = settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
ROUTES = {"PLANID12345": {"bin": "610014", "pcn": "RXSANDBX", "group_id": "G", "plan_id": "P"}}
SAMPLE = (
    Path(__file__).resolve().parents[2] / "resources" / "x12" / "837_005010X222A2"
    / "demo.drug.example10.1.837"
).read_text()  # fmt: skip
HEAD = SAMPLE[: SAMPLE.index("CLM*")]

_GROUP = st.sampled_from(["claim", "empty", "no-claim", "garbage", "bad-field", "blank"])


@st.composite
def _transmission(draw: st.DrawFn) -> tuple[str, int]:
    kinds = draw(st.lists(_GROUP, max_size=5))
    stray = draw(st.booleans())
    count = draw(st.integers(0, 9))
    body = b.segment("04", b.INSURANCE) + b.segment("01", b.PATIENT)
    if stray:
        body += b.segment("07", b.claim("000000000777"))
    groups = {
        "claim": b.transaction(f"{draw(st.integers(0, 99)):012d}"),
        "empty": b.GS,
        "no-claim": b.GS + b.segment("03", {"EZ": "01", "DB": "1982763546"}),
        "garbage": b.GS + b.RS + b.FS + "XX07",
        "bad-field": b.GS + b.segment("07", b.claim(E7="x")) + b.segment("07", b.claim()),
        "blank": b.GS + b.RS + b.RS,
    }
    text = b.header(count=count) + body + "".join(groups[k] for k in kinds)
    real = sum(1 for k in kinds if k not in ("empty", "blank"))
    if not kinds:  # no group separator: the body's transaction segments are one claim
        return text, 1
    return text, max(real + stray, 1)


@FAST
@given(_transmission())
def test_ncpdp_records_out_equal_transactions_in(case: tuple[str, int]) -> None:
    text, expected = case
    records = parse_transmission(text, "x", 1)
    assert len(records) == expected
    assert all(has_claim_id(r) for r in records)


@FAST
@given(st.lists(_transmission(), min_size=1, max_size=4), st.booleans())
def test_ncpdp_file_records_equal_transactions(cases: list[tuple[str, int]], crlf: bool) -> None:
    newline = "\r\n" if crlf else "\n"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.ncpdp"
        path.write_text(newline.join(text for text, _ in cases) + newline)
        assert len(list(read_ncpdp(str(path)))) == sum(n for _, n in cases)


_LINE = st.sampled_from(["ndc", "upc", "no-lin", "bad-ctp", "f2"])


@st.composite
def _interchange(draw: st.DrawFn) -> tuple[str, int]:
    claims = draw(st.lists(st.lists(_LINE, max_size=4), min_size=1, max_size=4))
    parts = []
    lins = 0
    for c, lines in enumerate(claims):
        parts.append(f"CLM*C{c}*10***11:B:1*Y*A*Y*Y~\n")
        for n, kind in enumerate(lines, start=1):
            parts.append(f"LX*{n}~\nSV1*HC:J1550*5.00*UN*1*11**1~\nDTP*472*D8*20240711~\n")
            if kind == "no-lin":
                continue
            lins += 1
            qualifier = "UP" if kind == "upc" else "N4"
            quantity = "1O" if kind == "bad-ctp" else "10"
            unit = "F2" if kind == "f2" else "ML"
            parts.append(f"LIN**{qualifier}*00026063512~\nCTP****{quantity}*{unit}~\n")
    body = HEAD + "".join(parts)
    se_count = draw(st.sampled_from(["right", "wrong", "missing"]))
    count = body[body.index("ST*") :].count("~") + 1
    if se_count != "missing":
        body += f"SE*{count if se_count == 'right' else count + 1}*0711~\n"
    body += draw(st.sampled_from(["GE*1*1~\nIEA*1*000000907~\n", "GE*2*1~\n", ""]))
    return body, lins


@FAST
@given(st.lists(_interchange(), min_size=1, max_size=3))
def test_x12_records_out_equal_drug_lines_in(cases: list[tuple[str, int]]) -> None:
    expected = sum(n for _, n in cases)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.837"
        path.write_text("".join(text for text, _ in cases))
        try:
            records = list(read_x12(str(path), ROUTES))
        except InputError as exc:  # only "empty file", and only without a drug line
            assert expected == 0 and "empty file" in str(exc)
            return
    assert len(records) == expected
    assert all(has_claim_id(r) for r in records)
