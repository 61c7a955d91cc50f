"""CSV with a header row of canonical field names.

One record is one claim, and a bad record never takes its neighbours with it:

* CR, LF and CRLF each end a physical line;
* a quoted field may hold a line end (``"12 MAIN ST\\nAPT 4"``): the record then
  spans up to ``MAX_RECORD_LINES`` physical lines, and is one claim numbered by
  its first line. It is taken as one record only when the joined lines parse
  strictly with the header's field count; otherwise its first line is read on
  its own, so a stray ``"`` quarantines its own line (``MALFORMED_RECORD``) and
  never swallows the lines after it;
* a record whose field count is not the header's (an unquoted comma in
  ``GARCIA, JR``) is quarantined ``FIELD_COUNT_MISMATCH`` under an id made from
  file and line (``<file-stem>:<line>``): its columns are misaligned, so no value
  of it is kept (the column under ``claim_id`` might hold a name);
* a line that is not UTF-8 is quarantined (``MALFORMED_RECORD``).

A header naming a column twice, or no data record at all, is an ``InputError``.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.claims.text import derived_id
from rxfleet.errors import InputError
from rxfleet.formats.base import Problem, Record
from rxfleet.formats.textio import EMPTY_FILE, NOT_UTF8, decode_marked, open_binary, physical_lines

#: The most physical lines one record (a quoted field holding line ends) may span.
MAX_RECORD_LINES = 16
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    raw: bytes
    ending: bytes


class _Lines:
    """Physical lines with a look-ahead window (a record may span several)."""

    def __init__(self, lines: Iterator[tuple[int, bytes, bytes]]) -> None:
        self._lines = lines
        self._ahead: deque[_Line] = deque()

    def next(self) -> _Line | None:
        if self._ahead:
            return self._ahead.popleft()
        found = next(self._lines, None)
        return _Line(*found) if found is not None else None

    def peek(self, count: int) -> list[_Line]:
        """Up to ``count`` lines after the current one, left unread."""
        while len(self._ahead) < count and (found := next(self._lines, None)) is not None:
            self._ahead.append(_Line(*found))
        return list(self._ahead)[:count]

    def skip(self, count: int) -> None:
        for _ in range(count):
            self._ahead.popleft()


def read_csv(path: str) -> Iterator[Record]:
    """One Record per non-blank data record; ``number`` is its first physical line."""
    with open_binary(path) as handle:
        lines = _Lines(physical_lines(handle))
        first = lines.next()
        if first is None:
            raise InputError(path, "empty file: no header row", 1)
        raw = first.raw[len(_BOM) :] if first.raw.startswith(_BOM) else first.raw
        header = _header(path, *decode_marked(raw))
        emitted = False
        while (line := lines.next()) is not None:
            record = _next_record(path, header, line, lines)
            if record is not None:
                emitted = True
                yield record
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


def _next_record(path: str, header: list[str], line: _Line, lines: _Lines) -> Record | None:
    """The record starting at ``line`` (taking the lines a quoted line end joins to it);
    None for a blank line (no cell holds anything)."""
    text, utf8 = decode_marked(line.raw)
    if not text.strip():
        return None
    if not utf8:
        return Record(path, line.number, problem=Problem("MALFORMED_RECORD", f"line is {NOT_UTF8}"))
    if _open_quote(text):
        joined = _joined(header, line, text, lines)
        if joined is not None:
            return Record(path, line.number, dict(zip(header, joined, strict=True)))
    try:
        row = _parse(text)
    except csv.Error as exc:  # an unbalanced quote spoils this line only
        return Record(path, line.number, problem=Problem("MALFORMED_RECORD", f"CSV: {exc}"))
    if not any(cell.strip() for cell in row):
        return None
    return _record(path, line.number, header, row)


def _open_quote(text: str) -> bool:
    return text.count('"') % 2 == 1


def _joined(header: list[str], line: _Line, text: str, lines: _Lines) -> list[str] | None:
    """The row of ``line`` joined with the next lines up to where its quote closes, when
    that parses strictly with the header's field count (the lines are then consumed)."""
    joined = text
    ending = line.ending
    following = lines.peek(MAX_RECORD_LINES - 1)
    for used, nxt in enumerate(following, start=1):
        more, utf8 = decode_marked(nxt.raw)
        if not utf8 or not ending:
            return None
        joined += ending.decode() + more
        ending = nxt.ending
        if not _open_quote(joined):
            row = _row_or_none(joined)
            if row is None or len(row) != len(header):
                return None
            lines.skip(used)
            return row
    return None


def _row_or_none(text: str) -> list[str] | None:
    try:
        return _parse(text)
    except csv.Error:
        return None


def _record(path: str, line: int, header: list[str], row: list[str]) -> Record:
    if len(row) != len(header):
        message = f"record has {len(row)} fields, header has {len(header)}"
        fields = {"claim_id": derived_id(path, line)}  # misaligned: no value of it is kept
        return Record(path, line, fields, Problem("FIELD_COUNT_MISMATCH", message))
    return Record(path, line, dict(zip(header, row, strict=True)))
