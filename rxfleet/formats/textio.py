"""Opening inputs with a clear error."""

from __future__ import annotations

import re
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
