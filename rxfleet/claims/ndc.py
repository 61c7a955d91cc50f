"""National Drug Code normalization to the 11-digit 5-4-2 billing form.

The FDA assigns 10-digit NDCs as labeler-product-package in one of three
configurations: 4-4-2, 5-3-2 or 5-4-1. Billing standards (NCPDP 407-D7, X12
``LIN*N4``) carry the 11-digit 5-4-2 form, made by a leading zero in the short
segment. An NDC has no check digit: whether it exists is known only from a
reference file (the crosswalk).

Rules here:

* hyphenated 4-4-2, 5-3-2, 5-4-1 pad the short segment to 5-4-2;
* hyphenated 5-4-2 and plain 11 digits pass as they are;
* plain 10 digits are refused: without hyphens the configuration is unknown and
  any guess may name another drug;
* the all-zero placeholder is refused;
* labeler ``00000`` is refused: FDA labeler codes (21 CFR 207.35, the NDC
  Directory) are never all zero; ``0000-0000-01`` pads to labeler ``00000``.
"""

from __future__ import annotations

import re

_HYPHENATED = re.compile(r"^([0-9]{4,5})-([0-9]{3,4})-([0-9]{1,2})$")
_PAD = {(4, 4, 2): (1, 0, 0), (5, 3, 2): (0, 1, 0), (5, 4, 1): (0, 0, 1), (5, 4, 2): (0, 0, 0)}


class NdcError(ValueError):
    """An NDC that cannot be normalized; ``code`` is the validation code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def normalize_ndc(raw: str) -> str:
    """The 11-digit NDC for ``raw``, or NdcError saying why there is none."""
    value = raw.strip()
    if value.isascii() and value.isdigit():
        return _check_placeholder(_plain(value))
    match = _HYPHENATED.match(value)
    if match is None:
        raise NdcError(
            "ERR_INVALID_NDC_FORMAT", "NDC is not 4-4-2, 5-3-2, 5-4-1, 5-4-2 or 11 digits"
        )
    parts = match.groups()
    pad = _PAD.get((len(parts[0]), len(parts[1]), len(parts[2])))
    if pad is None:
        raise NdcError("ERR_INVALID_NDC_FORMAT", "NDC segments are not a known configuration")
    padded = "".join("0" * zeros + part for zeros, part in zip(pad, parts, strict=True))
    return _check_placeholder(padded)


def format_ndc11(ndc11: str) -> str:
    """The 11-digit NDC with hyphens, 5-4-2."""
    return f"{ndc11[:5]}-{ndc11[5:9]}-{ndc11[9:]}"


def _plain(value: str) -> str:
    if len(value) == 11:
        return value
    if len(value) == 10:
        raise NdcError(
            "ERR_AMBIGUOUS_NDC",
            "10-digit NDC without hyphens is ambiguous (4-4-2, 5-3-2 or 5-4-1); send it hyphenated",
        )
    raise NdcError("ERR_INVALID_NDC_FORMAT", "NDC must have 11 digits, or 10 with hyphens")


def _check_placeholder(ndc11: str) -> str:
    if set(ndc11) == {"0"}:
        raise NdcError("ERR_INVALID_NDC_FORMAT", "NDC is the all-zero placeholder")
    if ndc11.startswith("00000"):
        raise NdcError("ERR_INVALID_NDC_LABELER", "NDC labeler code 00000 is never assigned")
    return ndc11
