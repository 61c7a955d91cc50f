"""JSON Lines: one claim object a line."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rxfleet.claims.fields import CANONICAL_FIELDS, CLAIM_ID_CHARS, CLAIM_ID_MAX
from rxfleet.errors import InputError
from rxfleet.formats.base import Problem, Record
from rxfleet.formats.textio import EMPTY_FILE, NOT_UTF8, open_binary, physical_lines

_SURROGATE = re.compile("[\ud800-\udfff]")
#: Where a lone surrogate can come from in text read as UTF-8: a JSON escape
#: ``\uD800``..``\uDFFF`` (strict UTF-8 decoding refuses an encoded one).
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")

_CLAIM_ID = re.compile(rf'"claim_id"\s*:\s*"({CLAIM_ID_CHARS}{{1,{CLAIM_ID_MAX}}})"'.encode())


#: Deepest nesting read: a claim is a flat object; deeper input is refused before
#: ``json`` recurses (RecursionError at about 1,000 levels).
MAX_DEPTH = 32


def read_jsonl(path: str) -> Iterator[Record]:
    """One Record per non-blank line; a line that is not a JSON object is a Problem.

    CR, LF and CRLF each end a line (:func:`~rxfleet.formats.textio.physical_lines`):
    a file written with CR-only line ends is as many claims as it has lines.

    Every way a line can fail is one bad record (``MALFORMED_RECORD``), never a
    traceback: not UTF-8, not JSON, nested deeper than ``MAX_DEPTH``, an integer
    beyond Python's digit limit, a lone surrogate (``"\\ud800"``) in a string.
    A key given twice in one object is ``DUPLICATE_FIELD`` (which value is meant?
    ``json`` alone would keep the last one silently). A file without a single record
    is ``InputError("empty file: no claims")``.
    """
    emitted = False
    with open_binary(path) as handle:
        for number, raw, _ in physical_lines(handle):
            if raw.strip():
                emitted = True
                yield _record(path, number, raw)
    if not emitted:
        raise InputError(path, EMPTY_FILE)


@dataclass(frozen=True)
class Slice:
    """A run of whole physical lines of a JSONL file: ``count`` records (non-blank
    lines), the first of them numbered ``first_line``, the bytes as in the file."""

    first_line: int
    count: int
    data: bytes


def jsonl_slices(path: str, size: int) -> Iterator[Slice]:
    """``path`` cut at line ends into slices of ``size`` records (the last one fewer),
    without parsing a line: the producer ships these to the intake link, which reads
    them with :func:`read_slice` into exactly the records :func:`read_jsonl` gives.
    Blank lines after the last record belong to no slice. A file without a record is
    ``InputError("empty file: no claims")``."""
    parts: list[bytes] = []
    count, first_line, emitted = 0, 1, False
    with open_binary(path) as handle:
        for number, raw, ending in physical_lines(handle):
            if not parts:
                first_line = number
            parts += (raw, ending)
            if raw.strip():
                count += 1
                if count == size:
                    yield Slice(first_line, count, b"".join(parts))
                    parts, count, emitted = [], 0, True
    if count:
        yield Slice(first_line, count, b"".join(parts))
    elif not emitted:
        raise InputError(path, EMPTY_FILE)


def read_slice(path: str, first_line: int, data: bytes) -> Iterator[Record]:
    """The records of a slice of ``path`` (:func:`jsonl_slices`), numbered as in the file."""
    for number, raw, _ in physical_lines(io.BytesIO(data)):
        if raw.strip():
            yield _record(path, first_line + number - 1, raw)


def _malformed(path: str, number: int, raw: bytes, message: str) -> Record:
    return Record(path, number, fields=_salvage(raw), problem=Problem("MALFORMED_RECORD", message))


def _record(path: str, number: int, raw: bytes) -> Record:
    try:
        text = raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return Record(path, number, problem=Problem("MALFORMED_RECORD", f"line is {NOT_UTF8}"))
    if _too_deep(text):
        return _malformed(path, number, raw, f"nested deeper than {MAX_DEPTH} levels")
    try:
        data = json.loads(text, object_pairs_hook=_unique)
    except _DuplicateKey as exc:
        return Record(path, number, fields=_salvage(raw), problem=exc.problem)
    except json.JSONDecodeError as exc:
        return _malformed(path, number, raw, f"not JSON (column {exc.colno}: {exc.msg})")
    except (ValueError, RecursionError):  # int beyond the digit limit, deep nesting
        return _malformed(path, number, raw, "not JSON (a number too long, or too deep)")
    if not isinstance(data, dict):
        return Record(path, number, problem=Problem("MALFORMED_RECORD", "not a JSON object"))
    if _ESCAPED_SURROGATE.search(text) is not None and _has_surrogate(data):
        return _malformed(path, number, raw, "a string holds a lone surrogate (not Unicode text)")
    return Record(path, number, fields=data)


class _DuplicateKey(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.problem = Problem("DUPLICATE_FIELD", "a field is given twice", field=_field_name(name))


def _field_name(name: str) -> str | None:
    """The duplicated key when it names a canonical field (never echo arbitrary text)."""
    return name if name in CANONICAL_FIELDS else None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are each given once; a second one is refused, not
    silently won by the last value."""
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _DuplicateKey(name)
        out[name] = value
    return out


def _too_deep(text: str) -> bool:
    """True when brackets nest deeper than MAX_DEPTH (strings may hold brackets:
    those only make the count too high, and such a line is still refused safely)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # too few brackets to nest so deep
        return False
    depth = 0
    for char in text:
        if char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif char in "]}":
            depth -= 1
    return False


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(item) for item in value)
    return False


def _salvage(raw: bytes) -> dict[str, str]:
    """The claim id of a broken line when it can be seen, so the result names it."""
    match = _CLAIM_ID.search(raw)
    return {"claim_id": match.group(1).decode()} if match else {}
