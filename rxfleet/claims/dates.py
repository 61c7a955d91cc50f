"""Dates as claims carry them: CCYYMMDD (NCPDP 401-D1 and 304-C4, X12 ``D8``) and
ISO ``YYYY-MM-DD`` (JSON Lines, CSV, Parquet). One parser for both."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def parse_ccyymmdd(raw: str) -> date:
    """A CCYYMMDD date; ValueError naming what is wrong (never the value)."""
    text = raw.strip()
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        raise ValueError("not a CCYYMMDD date")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ValueError("not a calendar date") from None


def ccyymmdd_to_iso(raw: str) -> str:
    """CCYYMMDD → ISO ``YYYY-MM-DD``; ValueError as ``parse_ccyymmdd``."""
    return parse_ccyymmdd(raw).isoformat()


def parse_date(value: Any) -> date:
    """ISO ``YYYY-MM-DD`` or CCYYMMDD; ValueError otherwise.

    A datetime (a Parquet timestamp column) is read as its date. Other ISO 8601
    forms that ``date.fromisoformat`` takes (week dates, ordinal dates) are refused.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    if len(text) == 8 and text.isascii() and text.isdigit():
        return parse_ccyymmdd(text)
    if not _ISO_DATE.fullmatch(text):
        raise ValueError("not a YYYY-MM-DD or CCYYMMDD date")
    return date.fromisoformat(text)
