"""JSON Lines: one claim object a line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from rxfleet.claims.fields import CLAIM_ID_CHARS, CLAIM_ID_MAX
from rxfleet.formats.base import Problem, Record
from rxfleet.formats.textio import open_binary

_CLAIM_ID = re.compile(rf'"claim_id"\s*:\s*"({CLAIM_ID_CHARS}{{1,{CLAIM_ID_MAX}}})"'.encode())


def read_jsonl(path: str) -> Iterator[Record]:
    """One Record per non-blank line; a line that is not a JSON object is a Problem."""
    with open_binary(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield _record(path, number, raw)


def _record(path: str, number: int, raw: bytes) -> Record:
    try:
        data = json.loads(raw.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n"))
    except UnicodeDecodeError:
        return Record(path, number, problem=Problem("MALFORMED_RECORD", "line is not UTF-8"))
    except json.JSONDecodeError as exc:
        problem = Problem("MALFORMED_RECORD", f"not JSON (column {exc.colno}: {exc.msg})")
        return Record(path, number, fields=_salvage(raw), problem=problem)
    if not isinstance(data, dict):
        return Record(path, number, problem=Problem("MALFORMED_RECORD", "not a JSON object"))
    return Record(path, number, fields=data)


def _salvage(raw: bytes) -> dict[str, str]:
    """The claim id of a broken line when it can be seen, so the result names it."""
    match = _CLAIM_ID.search(raw)
    return {"claim_id": match.group(1).decode()} if match else {}
