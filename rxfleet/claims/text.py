"""Text a claim may carry, and safe stand-ins for text it may not.

A control character (NUL, the rest of C0 but tab, DEL) has no business in any
claim field: PostgreSQL refuses NUL outright, and a newline in an id splits log
lines. Intake refuses such a field with ``CONTROL_CHARACTER``; where a claim
must still be named (a result row, a dead letter), it is named by an id derived
from file and line (:func:`derived_id`), never by the raw value; where a value
must be kept for a person to see, it is :func:`escaped` (control characters
as ``\\xNN``, cut to a length any index takes).

What reaches a terminal is escaped further (``terminal=True``; :func:`shown`): tab,
the C1 controls (U+0080..U+009F: CSI among them) and the bidirectional overrides
too, so no value can move the cursor, clear the screen, forge a line or a column,
or reorder what is shown.
"""

from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any

#: NUL and the C0 controls other than tab, DEL, and lone surrogates (not text at all).
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
#: ... and, for a terminal, tab, C1, and the bidirectional marks, embeddings and isolates.
_UNSHOWABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NOT_ID = re.compile(r"[^A-Za-z0-9._\-]")
#: The longest escaped value kept (well inside a btree index row).
ESCAPED_MAX = 200
#: The longest value shown on a terminal.
SHOWN_MAX = 4000
_STEM_MAX = 48


def has_control(value: Any) -> bool:
    """True when ``value`` is text holding a control character (or a lone surrogate)."""
    return isinstance(value, str) and _CONTROL.search(value) is not None


def holds_control(value: Any) -> bool:
    """True when ``value``, or any text nested in it (lists, objects, keys), holds a
    control character."""
    if isinstance(value, str):
        return _CONTROL.search(value) is not None
    if isinstance(value, list | tuple):
        return any(holds_control(item) for item in value)
    if isinstance(value, dict):
        return any(holds_control(k) or holds_control(v) for k, v in value.items())
    return False


def fields_hold_control(fields: dict[str, Any]) -> bool:
    """True when any name or value of ``fields`` (nested text included) holds a control
    character: one search over the names and the text values joined, the nested ones
    (lists, objects) one by one."""
    texts = [name for name in fields if type(name) is str]
    texts += [value for value in fields.values() if type(value) is str]
    if _CONTROL.search(" ".join(texts)) is not None:
        return True
    return any(holds_control(v) for v in fields.values() if type(v) not in PLAIN_TYPES) or any(
        type(name) is not str and holds_control(name) for name in fields
    )


#: The JSON primitives' own types (not their subclasses): values with no nested text.
PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})


def derived_id(source: str, line: int) -> str:
    """An id made from the file's stem and the line: ``claims:17``; a valid claim id."""
    stem = _NOT_ID.sub("_", PurePath(source).stem)[:_STEM_MAX] or "input"
    return f"{stem}:{line}"


def escaped(text: str, limit: int = ESCAPED_MAX, *, terminal: bool = False) -> str:
    """``text`` with each control character as ``\\xNN`` (``\\uNNNN`` for a surrogate),
    cut to ``limit`` characters; with ``terminal``, tab, C1 and bidirectional controls
    too (for a terminal, a TSV line, an error message)."""
    safe = (_UNSHOWABLE if terminal else _CONTROL).sub(_escape, text)
    return safe if len(safe) <= limit else safe[: limit - 1] + "\u2026"


def shown(value: Any) -> str:
    """``value`` as text fit for a terminal (:func:`escaped` with ``terminal``); None
    as the empty string."""
    return "" if value is None else escaped(str(value), SHOWN_MAX, terminal=True)


def _escape(match: re.Match[str]) -> str:
    point = ord(match.group())
    return f"\\x{point:02x}" if point < 0x100 else f"\\u{point:04x}"


def escaped_deep(value: Any) -> Any:
    """``value`` with every string in it (keys too) :func:`escaped`."""
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, list | tuple):
        return [escaped_deep(item) for item in value]
    if isinstance(value, dict):
        return {escaped(str(k)): escaped_deep(v) for k, v in value.items()}
    return value
