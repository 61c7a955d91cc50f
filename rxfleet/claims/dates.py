"""The CCYYMMDD dates of NCPDP (401-D1, 304-C4) and X12 (DTP/DMG with D8)."""

from __future__ import annotations

from datetime import date


def ccyymmdd_to_iso(raw: str) -> str:
    """CCYYMMDD → ISO ``YYYY-MM-DD``; ValueError naming what is wrong (never the value)."""
    text = raw.strip()
    if len(text) != 8 or not text.isascii() or not text.isdigit():
        raise ValueError("not a CCYYMMDD date")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:])).isoformat()
    except ValueError:
        raise ValueError("not a calendar date") from None
