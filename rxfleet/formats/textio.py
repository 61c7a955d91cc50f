"""Opening inputs with a clear error."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from typing import BinaryIO

from rxfleet.errors import InputError

#: What a path that is not a regular file is, by its ``st_mode`` type.
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
    stat.S_IFSOCK: "a socket",
}
#: Why standard input is not an input: a run reads its input more than once.
NOT_REREADABLE = "a run reads its input more than once (its hash, its claims, a resume)"


def open_binary(path: str) -> BinaryIO:
    """Open ``path`` for reading bytes, or InputError naming it. Only a regular file
    is opened: a FIFO, a device, a directory or ``-`` (standard input) is refused
    before a byte is read (opened without blocking, so a FIFO with no writer does not
    hang and one with a writer loses nothing)."""
    if path == "-":
        raise InputError(path, f"standard input cannot be read: {NOT_REREADABLE}; save it "
                         "to a file")  # fmt: skip
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(path, f"cannot open: {exc.strerror}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise InputError(path, f"{kind}, not a regular file: {NOT_REREADABLE}")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


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
