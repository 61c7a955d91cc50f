"""The NDC-to-GPI crosswalk file and its formulary flags."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from config.settings import SAMPLE_CROSSWALK
from rxfleet.claims.crosswalk import CrosswalkEntry, file_digest, read_crosswalk
from rxfleet.claims.gpi import is_gpi14
from rxfleet.errors import InputError

HEADER = "ndc11,gpi14,drug_name,obsolete,replaced_by,quantity_limit,prior_auth,step_therapy\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "crosswalk.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_bundled_sample_reads() -> None:
    entries = list(read_crosswalk(SAMPLE_CROSSWALK))
    assert len(entries) == len(SAMPLE_CROSSWALK.read_text().splitlines()) - 1  # less the header
    by_ndc = {e.ndc11: e for e in entries}
    assert len(by_ndc) == len(entries)
    assert all(is_gpi14(e.gpi14) and len(e.ndc11) == 11 for e in entries)
    assert by_ndc["00071015523"].gpi14 == "39400010100310"
    assert by_ndc["00071015523"].drug_name == "atorvastatin 10 mg tablet"
    old = by_ndc["00378180310"]
    assert old.obsolete and old.replaced_by == "68180051301"
    assert old.replaced_by in by_ndc  # the successor is itself in the crosswalk
    assert by_ndc["00074433902"].prior_auth
    assert by_ndc["00088222033"].step_therapy
    assert by_ndc["00169413212"].quantity_limit == "4"


def test_sample_flags() -> None:
    by_ndc = {e.ndc11: e for e in read_crosswalk(SAMPLE_CROSSWALK)}
    assert by_ndc["00071015523"].flags(Decimal(30)) == []
    assert by_ndc["00378180310"].flags(Decimal(30)) == ["OBSOLETE_NDC"]
    assert by_ndc["00074433902"].flags(Decimal(2)) == ["PRIOR_AUTH_FLAG"]
    assert by_ndc["00088222033"].flags(Decimal(10)) == ["STEP_THERAPY_FLAG"]
    semaglutide = by_ndc["00169413212"]
    assert semaglutide.flags(Decimal(4)) == ["STEP_THERAPY_FLAG"]  # at the limit: fine
    assert semaglutide.flags(Decimal("4.001")) == ["STEP_THERAPY_FLAG", "QUANTITY_LIMIT_FLAG"]
    assert semaglutide.flags(None) == ["STEP_THERAPY_FLAG"]


def test_all_flags_at_once_in_order() -> None:
    entry = CrosswalkEntry(
        "00000000001", "1" * 14, obsolete=True, prior_auth=True, step_therapy=True,
        quantity_limit="30",
    )  # fmt: skip
    assert entry.flags(Decimal(31)) == [
        "OBSOLETE_NDC",
        "PRIOR_AUTH_FLAG",
        "STEP_THERAPY_FLAG",
        "QUANTITY_LIMIT_FLAG",
    ]


@pytest.mark.parametrize("yes", ["Y", "y", "yes", "TRUE", "1", " Y "])
def test_yes_values(tmp_path: Path, yes: str) -> None:
    path = _write(tmp_path, HEADER + f"00071015523,39400010100310,,{yes},,,{yes},{yes}\n")
    (entry,) = read_crosswalk(path)
    assert entry.obsolete and entry.prior_auth and entry.step_therapy


@pytest.mark.parametrize("no", ["", "N", "no", "0", "false"])  # "X": refused since issue 11
def test_no_values(tmp_path: Path, no: str) -> None:
    path = _write(tmp_path, HEADER + f"00071015523,39400010100310,,{no},,,{no},{no}\n")
    (entry,) = read_crosswalk(path)
    assert not (entry.obsolete or entry.prior_auth or entry.step_therapy)


def test_minimal_header(tmp_path: Path) -> None:
    path = _write(tmp_path, "gpi14,ndc11\n39400010100310, 00071015523 \n")
    (entry,) = read_crosswalk(path)
    assert entry == CrosswalkEntry("00071015523", "39400010100310")


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ("0071-0155-23,39400010100310", "ndc11"),
        ("0007101552,39400010100310", "ndc11"),
        ("000710155230,39400010100310", "ndc11"),
        (",39400010100310", "ndc11"),
        ("00071015523,3940001010031", "gpi14"),
        ("00071015523,3940001010031X", "gpi14"),
        ("00071015523,", "gpi14"),
        ("00071015523", "gpi14"),  # short row
    ],
)
def test_bad_line_names_file_and_line(tmp_path: Path, line: str, field: str) -> None:
    good, other = "00071015623,39400010100320\n", "00071015624,39400010100320\n"
    path = _write(tmp_path, "ndc11,gpi14\n" + good + other + line + "\n" + good)
    with pytest.raises(InputError) as caught:
        list(read_crosswalk(path))
    assert caught.value.path == str(path)
    assert caught.value.line == 4
    assert f"{path}:4" in str(caught.value)
    assert field in caught.value.reason


def test_line_numbers_count_physical_lines(tmp_path: Path) -> None:
    text = 'ndc11,gpi14,drug_name\n00071015523,39400010100310,"two\nlines"\nbad,1,x\n'
    with pytest.raises(InputError) as caught:
        list(read_crosswalk(_write(tmp_path, text)))
    assert caught.value.line == 4


@pytest.mark.parametrize("header", ["", "ndc,gpi\n", "ndc11\n", "gpi14,drug_name\n"])
def test_bad_header(tmp_path: Path, header: str) -> None:
    with pytest.raises(InputError) as caught:
        list(read_crosswalk(_write(tmp_path, header + "00071015523,39400010100310\n")))
    assert caught.value.line == 1


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open crosswalk"):
        list(read_crosswalk(tmp_path / "nope.csv"))


def test_json_round_trip() -> None:
    for entry in read_crosswalk(SAMPLE_CROSSWALK):
        data = entry.to_json()
        assert "obsolete" not in data or data["obsolete"] is True  # falsy values left out
        assert CrosswalkEntry.from_json(data) == entry


def test_file_digest(tmp_path: Path) -> None:
    a = _write(tmp_path, HEADER)
    digest = file_digest(a)
    assert len(digest) == 16 and digest == file_digest(a)
    a.write_text(HEADER + "00071015523,39400010100310,,,,,,\n", encoding="utf-8")
    assert file_digest(a) != digest


# --- issue 11: the file is validated when it is loaded ---------------------------------

_CW_HEADER = "ndc11,gpi14,drug_name,obsolete,replaced_by,quantity_limit,prior_auth,step_therapy\n"
_CW_GOOD = "00071015523,39400010100310,ATORVASTATIN,N,,30,N,N\n"
CROSSWALK_BAD = [
    ("quantity_limit", "00071015523,39400010100310,X,N,,thirty,N,N\n"),
    ("quantity_limit", "00071015523,39400010100310,X,N,,-5,N,N\n"),
    ("quantity_limit", "00071015523,39400010100310,X,N,,NaN,N,N\n"),
    ("replaced_by", "00071015523,39400010100310,X,Y,XYZ,30,N,N\n"),
    ("prior_auth", "00071015523,39400010100310,X,N,,30,maybe,N\n"),
    ("gpi14", "00071015523,00000000000000,X,N,,30,N,N\n"),
]


@pytest.mark.parametrize(("column", "row"), CROSSWALK_BAD)
def test_bad_crosswalk_row_is_an_input_error_naming_line_and_column(
    tmp_path: Path, column: str, row: str
) -> None:
    from rxfleet.claims.crosswalk import read_crosswalk
    from rxfleet.errors import InputError

    path = tmp_path / "cw.csv"
    path.write_text(_CW_HEADER + _CW_GOOD + row)
    with pytest.raises(InputError) as caught:
        list(read_crosswalk(path))
    assert caught.value.line == 3 and column in caught.value.reason
    assert str(path) in str(caught.value)


def test_an_ndc_listed_twice_is_refused_naming_both_lines(tmp_path: Path) -> None:
    # Before: the last row silently won. A crosswalk is reference data: a person decides.
    rows = ["00071015523,39400010100310", "00071015623,39400010100320",
            "00071015523,39400010100399"]  # fmt: skip
    path = _write(tmp_path, "ndc11,gpi14\n" + "\n".join(rows) + "\n")
    with pytest.raises(InputError) as caught:
        list(read_crosswalk(path))
    assert (caught.value.path, caught.value.line) == (str(path), 4)
    assert "listed twice" in caught.value.reason and "line 2" in caught.value.reason


def test_the_bundled_sample_lists_each_ndc_once() -> None:
    entries = list(read_crosswalk(SAMPLE_CROSSWALK))
    assert len({e.ndc11 for e in entries}) == len(entries)
