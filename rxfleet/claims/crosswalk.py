"""The NDC-to-GPI crosswalk file and its formulary metadata.

CSV with a header: ``ndc11,gpi14`` and optional ``drug_name``, ``obsolete``
(Y/N), ``replaced_by`` (NDC-11), ``quantity_limit`` (units per fill),
``prior_auth`` (Y/N), ``step_therapy`` (Y/N).
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from rxfleet.claims.gpi import is_gpi14
from rxfleet.errors import InputError

_YES = {"y", "yes", "true", "1"}
_NO = {"n", "no", "false", "0"}


@dataclass(frozen=True, slots=True)
class CrosswalkEntry:
    ndc11: str
    gpi14: str
    drug_name: str | None = None
    obsolete: bool = False
    replaced_by: str | None = None
    quantity_limit: str | None = None
    prior_auth: bool = False
    step_therapy: bool = False
    #: From the payer's formulary events (``rxfleet.claims.formulary``): a file row is
    #: covered and has no tier; an event may say the drug is not covered (reject 70).
    covered: bool = True
    tier: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The fields set (``covered`` only when False: a file row is covered)."""
        out = {k: v for k, v in asdict(self).items() if v is not None and v is not False}
        out.pop("covered", None)
        return out if self.covered else {**out, "covered": False}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CrosswalkEntry:
        return cls(**data)

    def flags(self, quantity: Decimal | None) -> list[str]:
        """The WARN codes this entry raises for a claim of ``quantity``."""
        codes = ["OBSOLETE_NDC"] if self.obsolete else []
        codes += ["PRIOR_AUTH_FLAG"] if self.prior_auth else []
        codes += ["STEP_THERAPY_FLAG"] if self.step_therapy else []
        limit = self.quantity_limit
        if limit is not None and quantity is not None and quantity > Decimal(limit):
            codes.append("QUANTITY_LIMIT_FLAG")
        return codes


def file_digest(path: Path) -> str:
    """A short content digest: the crosswalk's version."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def read_crosswalk(path: Path) -> Iterator[CrosswalkEntry]:
    """Entries of a crosswalk file; InputError naming file, line and column for a bad one.

    Every column is checked when the file is loaded (ndc11, gpi14, replaced_by an
    NDC-11, quantity_limit a number above zero, flags Y/N), so a bad row stops the
    load instead of raising ``decimal.InvalidOperation`` per claim downstream. An NDC
    listed twice is refused too, naming both lines (the last row used to win, silently)."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot open crosswalk: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"ndc11", "gpi14"} <= set(reader.fieldnames):
            raise InputError(str(path), "crosswalk header must name ndc11 and gpi14", 1)
        first_at: dict[str, int] = {}
        for row in reader:
            entry = _entry(row, str(path), reader.line_num)
            seen = first_at.setdefault(entry.ndc11, reader.line_num)
            if seen != reader.line_num:
                reason = f"field ndc11: the NDC is listed twice (first at line {seen})"
                raise InputError(str(path), reason, reader.line_num)
            yield entry


def _entry(row: dict[str, str], path: str, line: int) -> CrosswalkEntry:
    ndc11, gpi14 = (row.get("ndc11") or "").strip(), (row.get("gpi14") or "").strip()
    if not _is_ndc11(ndc11):
        raise InputError(path, "field ndc11: must be 11 digits", line)
    if not is_gpi14(gpi14):
        raise InputError(path, "field gpi14: must be 14 digits (7 two-digit levels)", line)
    replaced_by = (row.get("replaced_by") or "").strip() or None
    if replaced_by is not None and not _is_ndc11(replaced_by):
        raise InputError(path, "field replaced_by: must be an 11-digit NDC", line)
    quantity_limit = (row.get("quantity_limit") or "").strip() or None
    if quantity_limit is not None and not _is_limit(quantity_limit):
        raise InputError(path, "field quantity_limit: must be a number above zero", line)
    flags = {}
    for name in ("obsolete", "prior_auth", "step_therapy"):
        text = (row.get(name) or "").strip().lower()
        if text and text not in _YES | _NO:
            raise InputError(path, f"field {name}: must be Y or N", line)
        flags[name] = text in _YES
    return CrosswalkEntry(
        ndc11=ndc11,
        gpi14=gpi14,
        drug_name=(row.get("drug_name") or "").strip() or None,
        replaced_by=replaced_by,
        quantity_limit=quantity_limit,
        **flags,
    )


def _is_ndc11(text: str) -> bool:
    return len(text) == 11 and text.isascii() and text.isdigit() and set(text) != {"0"}


def _is_limit(text: str) -> bool:
    """A quantity limit: a finite decimal above zero, ASCII digits (Decimal() reads others)."""
    if not text.isascii():
        return False
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    return number.is_finite() and number > 0
