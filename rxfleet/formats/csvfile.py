"""CSV with a header row of canonical field names.

Claims files have no multi-line fields: one physical line is one claim. Each
line is parsed on its own (strict quoting), so a stray ``"`` quarantines its own
line (``MALFORMED_RECORD``) and never swallows the lines after it. A line that is
not UTF-8 is quarantined too. A header naming a column twice, or no data line at
all, is an ``InputError``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.errors import InputError
from rxfleet.formats.base import Problem, Record
from rxfleet.formats.textio import EMPTY_FILE, NOT_UTF8, decode_marked, open_binary


def read_csv(path: str) -> Iterator[Record]:
    """One Record per non-blank data line; ``number`` is its physical line."""
    with open_binary(path) as handle:
        header: list[str] | None = None
        emitted = False
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            text, utf8 = decode_marked(raw.rstrip(b"\r\n"))
            if header is None:
                header = _header(path, text, utf8)
                continue
            record = _line(path, number, header, text, utf8)
            if record is not None:
                emitted = True
                yield record
        if header is None:
            raise InputError(path, "empty file: no header row", 1)
        if not emitted:
            raise InputError(path, EMPTY_FILE)


def _parse(text: str) -> list[str]:
    return next(csv.reader([text], strict=True), [])


def _header(path: str, text: str, utf8: bool) -> list[str]:
    if not utf8:
        raise InputError(path, f"header row is {NOT_UTF8}", 1)
    try:
        names = [name.strip() for name in _parse(text)]
    except csv.Error as exc:
        raise InputError(path, f"header row unreadable: {exc}", 1) from None
    if "claim_id" not in names:
        raise InputError(path, "header row has no claim_id column", 1)
    unknown = [name for name in names if name not in CANONICAL_FIELDS]
    if unknown:
        raise InputError(path, f"header row has unknown columns: {', '.join(unknown)}", 1)
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise InputError(path, f"header row names a column twice: {', '.join(twice)}", 1)
    return names


def _line(path: str, number: int, header: list[str], text: str, utf8: bool) -> Record | None:
    """The record of one physical line; None for a blank one (no cell holds anything)."""
    if not text.strip():
        return None
    if not utf8:
        return Record(path, number, problem=Problem("MALFORMED_RECORD", f"line is {NOT_UTF8}"))
    try:
        row = _parse(text)
    except csv.Error as exc:
        # One physical line is one claim: an unbalanced quote spoils this line only.
        return Record(path, number, problem=Problem("MALFORMED_RECORD", f"CSV: {exc}"))
    if not any(cell.strip() for cell in row):
        return None
    return _record(path, number, header, row)


def _record(path: str, line: int, header: list[str], row: list[str]) -> Record:
    if len(row) != len(header):
        at = header.index("claim_id")
        fields = {"claim_id": row[at]} if at < len(row) else {}
        message = f"row has {len(row)} fields, header has {len(header)}"
        return Record(path, line, fields, Problem("MALFORMED_RECORD", message))
    return Record(path, line, dict(zip(header, row, strict=True)))
