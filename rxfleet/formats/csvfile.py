"""CSV with a header row of canonical field names."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.errors import InputError
from rxfleet.formats.base import Problem, Record
from rxfleet.formats.textio import open_text


def read_csv(path: str) -> Iterator[Record]:
    """One Record per data row; ``number`` is the row's first physical line."""
    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = _header(path, reader)
        while True:
            line = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield Record(path, line, problem=Problem("MALFORMED_RECORD", f"CSV: {exc}"))
                continue
            if any(cell.strip() for cell in row):
                yield _record(path, line, header, row)


def _header(path: str, reader: Iterator[list[str]]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(path, "empty file: no header row", 1) from None
    except csv.Error as exc:
        raise InputError(path, f"header row unreadable: {exc}", 1) from None
    names = [name.strip() for name in header]
    if "claim_id" not in names:
        raise InputError(path, "header row has no claim_id column", 1)
    unknown = [name for name in names if name not in CANONICAL_FIELDS]
    if unknown:
        raise InputError(path, f"header row has unknown columns: {', '.join(unknown)}", 1)
    return names


def _record(path: str, line: int, header: list[str], row: list[str]) -> Record:
    if len(row) != len(header):
        at = header.index("claim_id")
        fields = {"claim_id": row[at]} if at < len(row) else {}
        message = f"row has {len(row)} fields, header has {len(header)}"
        return Record(path, line, fields, Problem("MALFORMED_RECORD", message))
    return Record(path, line, dict(zip(header, row, strict=True)))
