"""Claim readers, one module per format, chosen by content and extension.

Every reader streams: constant memory whatever the size of the file. A file
that cannot be read at all raises ``InputError`` (before anything is enqueued);
a bad record inside a readable file is yielded with a ``Problem``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import StrEnum
from functools import partial
from pathlib import Path

from rxfleet.errors import InputError
from rxfleet.formats.base import Record
from rxfleet.formats.csvfile import read_csv
from rxfleet.formats.jsonl import read_jsonl
from rxfleet.formats.ncpdp import read_ncpdp, sniff_ncpdp
from rxfleet.formats.parquet import read_parquet
from rxfleet.formats.payer_sheet import NO_SHEET, PayerSheet
from rxfleet.formats.textio import open_binary
from rxfleet.formats.x12 import NO_ROUTES, Routes, read_x12, sniff_x12


class Format(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"
    PARQUET = "parquet"
    NCPDP = "ncpdp"
    X12 = "x12"


_BY_SUFFIX = {
    ".jsonl": Format.JSONL,
    ".ndjson": Format.JSONL,
    ".csv": Format.CSV,
    ".parquet": Format.PARQUET,
    ".pq": Format.PARQUET,
    ".837": Format.X12,
    ".837i": Format.X12,
    ".837p": Format.X12,
    ".x12": Format.X12,
    ".edi": Format.X12,
    ".ncpdp": Format.NCPDP,
    ".d0": Format.NCPDP,
}


def detect_format(path: str) -> Format:
    """The format of ``path``: content first, then extension; InputError if neither."""
    with open_binary(path) as handle:
        head = handle.read(4096)
    sniffed = _sniff(head)
    if sniffed is not None:
        return sniffed
    by_suffix = _BY_SUFFIX.get(Path(path).suffix.lower())
    if by_suffix is None:
        raise InputError(path, "unknown format (expected .jsonl, .csv, .parquet, NCPDP or X12)")
    return by_suffix


def _sniff(head: bytes) -> Format | None:
    if head.startswith(b"PAR1"):
        return Format.PARQUET
    if sniff_x12(head):
        return Format.X12
    if sniff_ncpdp(head):
        return Format.NCPDP
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return Format.JSONL
    return None


_READERS: dict[Format, Callable[[str], Iterator[Record]]] = {
    Format.JSONL: read_jsonl,
    Format.CSV: read_csv,
    Format.PARQUET: read_parquet,
}


def reader_for(
    fmt: Format, payer_routes: Routes = NO_ROUTES, payer_sheet: PayerSheet = NO_SHEET
) -> Callable[[str], Iterator[Record]]:
    """The reading function of ``fmt``; X12 reads BIN/PCN from ``payer_routes``, NCPDP
    its plan ids from ``payer_sheet``."""
    if fmt is Format.X12:
        return partial(read_x12, routes=payer_routes)
    if fmt is Format.NCPDP:
        return partial(read_ncpdp, sheet=payer_sheet)
    return _READERS[fmt]


def read_claims(
    path: str, payer_routes: Routes = NO_ROUTES, payer_sheet: PayerSheet = NO_SHEET
) -> Iterator[Record]:
    """Every record of ``path``, whatever its format."""
    return reader_for(detect_format(path), payer_routes, payer_sheet)(path)


def preflight(path: str, payer_routes: Routes = NO_ROUTES) -> Format:
    """Check that ``path`` is readable in its format before anything is enqueued.

    Reads the format's header (CSV header row, Parquet schema, first record) and
    raises InputError for a file that cannot be read at all.
    """
    fmt = detect_format(path)
    records = reader_for(fmt, payer_routes)(path)
    try:
        next(records, None)
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()
    return fmt
