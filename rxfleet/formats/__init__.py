"""Claim readers, one module per format, chosen by content and extension.

Every reader streams: constant memory whatever the size of the file. A file
that cannot be read at all raises ``InputError`` (before anything is enqueued);
a bad record inside a readable file is yielded with a ``Problem``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import StrEnum
from pathlib import Path

from rxfleet.errors import InputError
from rxfleet.formats.base import Record
from rxfleet.formats.textio import open_binary


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
    from rxfleet.formats.ncpdp import sniff_ncpdp
    from rxfleet.formats.x12 import sniff_x12

    if head.startswith(b"PAR1"):
        return Format.PARQUET
    if sniff_x12(head):
        return Format.X12
    if sniff_ncpdp(head):
        return Format.NCPDP
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return Format.JSONL
    return None


def reader_for(fmt: Format) -> Callable[[str], Iterator[Record]]:
    """The reading function of ``fmt``."""
    if fmt is Format.JSONL:
        from rxfleet.formats.jsonl import read_jsonl

        return read_jsonl
    if fmt is Format.CSV:
        from rxfleet.formats.csvfile import read_csv

        return read_csv
    if fmt is Format.PARQUET:
        from rxfleet.formats.parquet import read_parquet

        return read_parquet
    return _domain_reader(fmt)


def _domain_reader(fmt: Format) -> Callable[[str], Iterator[Record]]:
    if fmt is Format.NCPDP:
        from rxfleet.formats.ncpdp import read_ncpdp

        return read_ncpdp
    from rxfleet.formats.x12 import read_x12

    return read_x12


def read_claims(path: str) -> Iterator[Record]:
    """Every record of ``path``, whatever its format."""
    return reader_for(detect_format(path))(path)


def preflight(path: str) -> Format:
    """Check that ``path`` is readable in its format before anything is enqueued.

    Reads the format's header (CSV header row, Parquet schema, first record) and
    raises InputError for a file that cannot be read at all.
    """
    fmt = detect_format(path)
    records = reader_for(fmt)(path)
    try:
        next(records, None)
    finally:
        close = getattr(records, "close", None)
        if close is not None:
            close()
    return fmt
