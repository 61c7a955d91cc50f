"""Opening inputs with a clear error."""

from __future__ import annotations

from typing import BinaryIO, TextIO

from rxfleet.errors import InputError


def open_text(path: str) -> TextIO:
    """Open ``path`` as UTF-8 text (BOM tolerated, bad bytes shown as U+FFFD)."""
    try:
        return open(path, encoding="utf-8-sig", errors="replace", newline="")
    except OSError as exc:
        raise InputError(path, f"cannot open: {exc.strerror}") from None


def open_binary(path: str) -> BinaryIO:
    """Open ``path`` for reading bytes, or InputError naming it."""
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(path, f"cannot open: {exc.strerror}") from None
