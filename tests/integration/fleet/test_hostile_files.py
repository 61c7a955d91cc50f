"""Hostile input through ``rxfleet run`` on the real fleet: an exit code, one clear line
when the run cannot take the file, never a traceback, and one result row for every
claim that could be read (a bad record is quarantined with its code, never dropped)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rxfleet import cli
from rxfleet.formats.ncpdp_fields import GROUP_SEPARATOR
from tests.integration.fleet.fleet_support import Fleet
from tests.integration.fleet.test_gateway_faults import clean_claims
from tests.unit.formats import ncpdp_build as b

pytestmark = pytest.mark.integration


def _good(path: Path, n: int = 6) -> list[dict[str, Any]]:
    clean_claims(path, n, seed=31)
    return [json.loads(line) for line in path.read_text().splitlines()]


def _jsonl(path: Path, bad_line: bytes) -> tuple[Path, int]:
    claims = _good(path)
    lines = [json.dumps(c).encode() for c in claims]
    path.write_bytes(b"\n".join([*lines[:3], bad_line, *lines[3:]]) + b"\n")
    return path, len(claims) + 1


def deep(tmp: Path) -> tuple[Path, int]:
    return _jsonl(
        tmp / "deep.jsonl", b'{"claim_id": "D1", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    )


def huge_int(tmp: Path) -> tuple[Path, int]:
    return _jsonl(tmp / "huge.jsonl", b'{"claim_id": "H1", "days_supply": ' + b"9" * 5000 + b"}")


def surrogate(tmp: Path) -> tuple[Path, int]:
    return _jsonl(tmp / "surrogate.jsonl", b'{"claim_id": "S1", "pcn": "\\ud800"}')


def not_utf8(tmp: Path) -> tuple[Path, int]:
    return _jsonl(tmp / "latin1.jsonl", '{"claim_id": "L1", "pcn": "é"}'.encode("latin-1"))


def stray_quote(tmp: Path) -> tuple[Path, int]:
    claims = _good(tmp / "seed.jsonl")
    names = list(claims[0])
    rows = [",".join(str(c.get(n, "")) for n in names) for c in claims]
    rows.insert(2, 'Q1,"610014,RXSANDBX')  # an unbalanced quote: this line only
    path = tmp / "quote.csv"
    path.write_text("\n".join([",".join(names), *rows]) + "\n")
    return path, len(claims) + 1


def ncpdp_empty_group(tmp: Path) -> tuple[Path, int]:
    path = tmp / "groups.ncpdp"
    lines = [b.transmission(1), b.transmission(1).split(GROUP_SEPARATOR)[0] + GROUP_SEPARATOR]
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")
    return path, 2


def parquet_cut_short(tmp: Path) -> tuple[Path, int]:
    path = tmp / "cut.parquet"
    claims = [c for _ in range(250) for c in _good(tmp / "p.jsonl", 4)][:1000]
    table = pa.Table.from_pylist([{**c, "claim_id": f"P{i:05d}"} for i, c in enumerate(claims)])
    pq.write_table(table, path, row_group_size=500)
    second = pq.ParquetFile(path).metadata.row_group(1).column(0)
    data = bytearray(path.read_bytes())
    for i in range(second.data_page_offset + 20, second.data_page_offset + 60):
        data[i] = 0xFF
    path.write_bytes(bytes(data))
    return path, 500  # the first row group is read; the second cannot be


CASES: dict[str, tuple[Callable[[Path], tuple[Path, int]], int, str]] = {
    "json nested 1,000 deep": (deep, 0, "MALFORMED_RECORD"),
    "an integer of 5,000 digits": (huge_int, 0, "MALFORMED_RECORD"),
    "a lone surrogate": (surrogate, 0, "MALFORMED_RECORD"),
    "a line that is not UTF-8": (not_utf8, 0, "MALFORMED_RECORD"),
    "an unbalanced quote in CSV": (stray_quote, 0, "MALFORMED_RECORD"),
    "an NCPDP group with no transaction": (ncpdp_empty_group, 0, ""),
    "a Parquet file unreadable part-way": (parquet_cut_short, 1, ""),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_file_on_the_real_fleet(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    make, code, quarantine_code = CASES[case]
    path, readable = make(tmp_path)
    out = tmp_path / "out.jsonl"
    capsys.readouterr()
    assert cli.main(["run", str(path), "-o", str(out), "--new", "--timeout", "60"]) == code
    streams = capsys.readouterr()
    assert "Traceback" not in streams.err + streams.out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == readable  # one row per claim that could be read
    if quarantine_code:
        assert any(quarantine_code in r["errors"] for r in rows)
    if code:
        said = [line for line in streams.err.splitlines() if "cut short" in line]
        assert len(said) == 1 and path.name in said[0], streams.err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty file"),
        (b"claim_id,cardholder_id,cardholder_id\nC1,A,B\n", "cardholder_id"),
    ],
)
def test_unreadable_files_exit_2_in_one_line_and_enqueue_nothing(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, needle: str
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    before = len(fleet.db.list_runs(1000))
    capsys.readouterr()
    assert cli.main(["run", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "Traceback" not in err[0]
    assert len(fleet.db.list_runs(1000)) == before


def test_a_fifo_a_device_or_stdin_is_refused_at_once_and_nothing_is_read(
    fleet: Fleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hashing a FIFO drained it and reading it again blocked forever: now anything
    but a regular file is refused before a byte is read (exit 2, one line)."""
    fifo = tmp_path / "claims.jsonl"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # a writer holds it open, five claims in the pipe
    waiting = "".join(json.dumps(c) + "\n" for c in _good(tmp_path / "five.jsonl", 5)).encode()
    os.write(writer, waiting)
    before = len(fleet.db.list_runs(1000))
    try:
        for path, kind in ((str(fifo), "FIFO"), ("/dev/zero", "character device"),
                           ("-", "standard input")):  # fmt: skip
            capsys.readouterr()
            started = time.monotonic()
            assert cli.main(["run", path]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert time.monotonic() - started < 10
            assert len(err) == 1 and kind in err[0] and "Traceback" not in err[0], err
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        try:
            assert os.read(reader, len(waiting) + 1) == waiting  # nothing was consumed
        finally:
            os.close(reader)
    finally:
        os.close(writer)
    assert len(fleet.db.list_runs(1000)) == before
