"""Property tests: whatever the bytes, the readers yield records or raise InputError only."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxfleet.errors import InputError
from rxfleet.formats.base import Problem, Record
from rxfleet.formats.ncpdp import parse_response, read_ncpdp
from rxfleet.formats.x12 import read_x12
from tests.unit.formats import ncpdp_build as b
from tests.unit.formats.ids import has_claim_id

ROUTES = {"PLANID12345": {"bin": "610014", "pcn": "RXSANDBX", "group_id": "G", "plan_id": "P"}}
SAMPLE_837 = (
    Path(__file__).resolve().parents[2]
    / "resources"
    / "x12"
    / "837_005010X222A2"
    / "demo.drug.example10.2.837"
).read_bytes()
ISA = SAMPLE_837[: SAMPLE_837.index(b"~") + 1]
NCPDP_LINE = b.transmission(2).encode()

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Bytes that matter to the parsers, so random input hits their branches.
_ALPHABET = st.sampled_from(
    [b"\x1e", b"\x1d", b"\x1c", b"AM07", b"AM01", b"E7", b"D9", b"~", b"*", b":", b"\n", b"\r\n",
     b"LX*1", b"LIN**N4*", b"CTP****", b"CLM*1", b"HL*1**22", b"NM1*PR*2****PI*PLANID12345",
     b"DTP*472*D8*", b"SV1*HC:1*", b"0", b"9", b"{", b"}", b"R", b"\xff", b"\xc3"]
)  # fmt: skip
_NOISE = st.one_of(st.binary(max_size=300), st.lists(_ALPHABET, max_size=60).map(b"".join))


def _run(reader: Callable[[str], Iterator[Record]], data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "input"
        path.write_bytes(data)
        try:
            records = list(reader(str(path)))
        except InputError:
            return
    for record in records:
        assert isinstance(record, Record)
        assert record.problem is None or isinstance(record.problem, Problem)
        assert isinstance(record.fields, dict)
        assert has_claim_id(record)


def _x12(path: str) -> Iterator[Record]:
    return read_x12(path, ROUTES)


@PROPERTY
@given(_NOISE)
def test_ncpdp_reader_on_arbitrary_bytes(data: bytes) -> None:
    _run(read_ncpdp, data)


@PROPERTY
@given(_NOISE, st.integers(min_value=0, max_value=len(NCPDP_LINE)))
def test_ncpdp_reader_on_mangled_transmissions(noise: bytes, cut: int) -> None:
    _run(read_ncpdp, NCPDP_LINE[:cut] + noise + b"\n" + NCPDP_LINE + noise)


@PROPERTY
@given(_NOISE)
def test_x12_reader_on_arbitrary_bytes(data: bytes) -> None:
    _run(_x12, data)


@PROPERTY
@given(_NOISE, st.integers(min_value=0, max_value=len(SAMPLE_837)))
def test_x12_reader_on_mangled_interchanges(noise: bytes, cut: int) -> None:
    _run(_x12, ISA + SAMPLE_837[len(ISA) : cut] + noise + SAMPLE_837[cut:])


@PROPERTY
@given(_NOISE)
def test_response_parser_raises_only_input_error(data: bytes) -> None:
    try:
        responses = parse_response(b.response_header().encode() + data)
    except InputError:
        return
    assert responses
