"""Opening inputs with a clear error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO

from rxfleet.errors import InputError


def open_binary(path: str) -> BinaryIO:
    """Open ``path`` for reading bytes, or InputError naming it."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(path, f"cannot open: {exc.strerror}") from None


#: Bytes that are not UTF-8, decoded with ``surrogateescape``: U+DC80..U+DCFF.
#: Valid UTF-8 never decodes to a lone surrogate, so their presence proves bad input.
_ESCAPED = re.compile("[\udc80-\udcff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
NOT_UTF8 = "not UTF-8"
#: One rule for every format: a file without a single claim record is an InputError.
EMPTY_FILE = "empty file: no claims"


def decode_marked(raw: bytes) -> tuple[str, bool]:
    """``raw`` as text and whether it was valid UTF-8 (invalid bytes become U+FFFD)."""
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace"), False


def has_escaped(text: str) -> bool:
    """True when ``text`` holds bytes decoded with ``surrogateescape`` (not UTF-8)."""
    return _ESCAPED.search(text) is not None


def scrub(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (safe to encode)."""
    return _SURROGATE.sub("\ufffd", text)


#: Bytes read at a time when splitting a file into physical lines.
CHUNK = 1 << 16
_EOL = re.compile(rb"\r\n|\r|\n")


def physical_lines(handle: BinaryIO) -> Iterator[tuple[int, bytes, bytes]]:
    """``(number, line, ending)`` for each physical line of ``handle``, streamed.

    CR, LF and CRLF each end a line (a CR at the end of one chunk waits for the
    next, so a CRLF split across chunks is one ending); ``ending`` is ``b""`` for
    a last line without one. Numbers start at 1.
    """
    number, pending = 0, b""
    while chunk := handle.read(CHUNK):
        pending += chunk
        start = 0
        for match in _EOL.finditer(pending):
            if match.end() == len(pending) and match.group() == b"\r":
                break  # maybe the first half of a CRLF: decide with the next chunk
            number += 1
            yield number, pending[start : match.start()], match.group()
            start = match.end()
        pending = pending[start:]
    if pending:
        ending = b"\r" if pending.endswith(b"\r") else b""
        yield number + 1, pending[: len(pending) - len(ending)], ending
