"""The reader dispatcher: format by content then extension, preflight, read_claims."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxfleet.errors import InputError
from rxfleet.formats import Format, detect_format, preflight, read_claims, reader_for
from rxfleet.formats.base import Problem, Record
from tests.unit.formats import ncpdp_build as b

X12_SAMPLE = (
    Path(__file__).resolve().parents[2]
    / "resources"
    / "x12"
    / "837_005010X222A2"
    / "demo.drug.example10.1.837"
)
JSONL = json.dumps({"claim_id": "A", "bin": "610014"}) + "\n"
CSV = "claim_id,bin\nA,610014\n"
NCPDP = b.transmission(1) + "\n"


def _parquet_bytes(tmp_path: Path) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "made.parquet"
    pq.write_table(pa.Table.from_pylist([{"claim_id": "A", "bin": "610014"}]), str(path))
    return path.read_bytes()


def _write(tmp_path: Path, name: str, data: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


# --- detect_format ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["claims.txt", "claims.dat", "claims", "claims.csv"])
def test_content_decides_first(tmp_path: Path, name: str) -> None:
    assert detect_format(_write(tmp_path, name, JSONL)) is Format.JSONL
    assert detect_format(_write(tmp_path, name, NCPDP)) is Format.NCPDP
    assert detect_format(_write(tmp_path, name, X12_SAMPLE.read_bytes())) is Format.X12
    assert detect_format(_write(tmp_path, name, _parquet_bytes(tmp_path))) is Format.PARQUET


def test_jsonl_sniffed_after_bom_and_blank_lines(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf\n \r\n\t" + JSONL.encode()
    assert detect_format(_write(tmp_path, "claims.txt", data)) is Format.JSONL


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [
        (".jsonl", Format.JSONL),
        (".ndjson", Format.JSONL),
        (".csv", Format.CSV),
        (".CSV", Format.CSV),
        (".parquet", Format.PARQUET),
        (".pq", Format.PARQUET),
        (".837", Format.X12),
        (".837P", Format.X12),
        (".837i", Format.X12),
        (".x12", Format.X12),
        (".edi", Format.X12),
        (".ncpdp", Format.NCPDP),
        (".d0", Format.NCPDP),
    ],
)
def test_extension_decides_when_content_says_nothing(
    tmp_path: Path, suffix: str, fmt: Format
) -> None:
    assert detect_format(_write(tmp_path, "claims" + suffix, "")) is fmt
    assert detect_format(_write(tmp_path, "other" + suffix, CSV)) is fmt


@pytest.mark.parametrize("name", ["claims.txt", "claims", "claims.json", "claims.xlsx"])
def test_unknown_format_is_an_input_error(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, name, CSV)
    with pytest.raises(InputError, match="unknown format") as caught:
        detect_format(path)
    assert caught.value.path == path


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        detect_format(str(tmp_path / "missing.jsonl"))


def test_reader_for_every_format() -> None:
    names = {fmt: getattr(reader_for(fmt), "func", reader_for(fmt)).__name__ for fmt in Format}
    assert names == {
        Format.JSONL: "read_jsonl",
        Format.CSV: "read_csv",
        Format.PARQUET: "read_parquet",
        Format.NCPDP: "read_ncpdp",
        Format.X12: "read_x12",
    }


# --- read_claims -------------------------------------------------------------------------


def test_read_claims_every_format(tmp_path: Path) -> None:
    cases: dict[str, str | bytes] = {
        "a.jsonl": JSONL,
        "a.csv": CSV,
        "a.parquet": _parquet_bytes(tmp_path),
        "a.ncpdp": NCPDP,
        "a.837": X12_SAMPLE.read_bytes(),
    }
    for name, data in cases.items():
        records = list(read_claims(_write(tmp_path, name, data)))
        assert len(records) == 1, name
        assert isinstance(records[0], Record)
        assert records[0].fields.get("claim_id") or records[0].keyed_id, name


# --- preflight ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        ("a.jsonl", JSONL, Format.JSONL),
        ("a.jsonl", "{broken\n", Format.JSONL),  # a bad record is not an unreadable file
        ("a.csv", CSV, Format.CSV),
        ("a.ncpdp", NCPDP, Format.NCPDP),
        ("a.837", X12_SAMPLE.read_text(encoding="utf-8"), Format.X12),
    ],
)
def test_preflight_readable(tmp_path: Path, name: str, data: str, fmt: Format) -> None:
    assert preflight(_write(tmp_path, name, data)) is fmt


def test_preflight_parquet(tmp_path: Path) -> None:
    assert preflight(_write(tmp_path, "a.parquet", _parquet_bytes(tmp_path))) is Format.PARQUET


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.csv", ""),  # no header row
        ("a.csv", "claim_id,member_ssn\nA,1\n"),  # unknown column
        ("a.csv", "bin\n610014\n"),  # no claim_id column
        ("a.parquet", b"PAR1 truncated"),
        ("a.parquet", b""),
        ("a.837", "not an interchange\n"),
        ("a.txt", "no format here\n"),
    ],
)
def test_preflight_raises_for_an_unreadable_file(tmp_path: Path, name: str, data: str) -> None:
    path = _write(tmp_path, name, data)
    with pytest.raises(InputError) as caught:
        preflight(path)
    assert caught.value.path == path


def test_preflight_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        preflight(str(tmp_path / "missing.csv"))
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(InputError):
        preflight(str(folder))


def test_preflight_reads_only_the_head(tmp_path: Path) -> None:
    # A CSV whose 2nd data row is broken preflights; the break is a record problem later.
    path = _write(tmp_path, "a.csv", CSV + '"A,unterminated\n')
    assert preflight(path) is Format.CSV


# --- arbitrary bytes ---------------------------------------------------------------------

_ALPHABET = st.sampled_from(
    [b"{", b"}", b'"claim_id"', b":", b",", b'"', b"\n", b"\r\n", b"\r", b"\x00", b"\xef\xbb\xbf",
     b"\xff", b"\xc3", b"claim_id,bin,ndc\n", b"[", b"]", b"null", b"1", b"a", b" ", b"PAR1"]
)  # fmt: skip
_BYTES = st.one_of(st.binary(max_size=400), st.lists(_ALPHABET, max_size=80).map(b"".join))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_BYTES, suffix=st.sampled_from([".jsonl", ".csv"]))
def test_arbitrary_bytes_give_records_or_input_error(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("input" + suffix)
        path.write_bytes(data)
        try:
            records = list(read_claims(str(path)))
        except InputError:
            return
    for record in records:
        assert isinstance(record, Record)
        assert record.problem is None or isinstance(record.problem, Problem)
        assert isinstance(record.fields, dict)
        assert record.number >= 1
