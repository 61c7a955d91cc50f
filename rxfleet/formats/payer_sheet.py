"""The payer sheet: which plan a BIN, PCN and group bill (``config/payer_sheet.csv``).

An NCPDP D.0 claim names no plan: the reader derives ``BIN-PCN-group`` from
101-A1, 104-A4 and 301-C1, which no plan-level override of the reject matrix
names. The sheet maps the three to the plan id the matrix knows.

CSV with a header naming ``bin``, ``pcn``, ``group_id`` and ``plan_id`` (other
columns, e.g. a note, are ignored). Values are compared as sent, blanks at either
end removed, letters case included. A row with an empty ``group_id`` is the
BIN/PCN's plan for any group a more exact row does not name (a claim without
301-C1 included); an empty ``pcn`` is a PCN left blank (104-A4 is optional), not
a wildcard. A claim the sheet has no row for keeps its derived id.

The sheet is loaded whole (a few hundred rows) and checked at load: a BIN not six
digits, a PCN over 10 or a group over 15 characters, a plan id missing or over
64 characters, or a second row for the same BIN, PCN and group is an
``InputError`` naming the file and line. Its version is its content digest
(``rxfleet.lifecycle.outcome_options``), part of a run's identity.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rxfleet.claims.fields import PLAN_ID_MAX
from rxfleet.errors import InputError

__all__ = ["NO_SHEET", "PayerSheet", "load_payer_sheet"]

COLUMNS = ("bin", "pcn", "group_id", "plan_id")
PCN_MAX = 10  # 104-A4
GROUP_MAX = 15  # 301-C1
#: A group-less row: the plan for any group of its BIN/PCN.
ANY_GROUP = ""

Key = tuple[str, str, str]


@dataclass(frozen=True)
class PayerSheet:
    """BIN, PCN and group to plan id; ``plan_for`` is None for a claim it does not name."""

    plans: Mapping[Key, str] = field(default_factory=dict)

    def plan_for(self, bin_: str, pcn: str, group_id: str) -> str | None:
        """The plan of an exact row, else of the BIN/PCN's group-less row, else None."""
        key = (bin_.strip(), pcn.strip(), group_id.strip())
        exact = self.plans.get(key)
        return exact if exact is not None else self.plans.get((key[0], key[1], ANY_GROUP))

    def __len__(self) -> int:
        return len(self.plans)


#: No sheet: every NCPDP claim keeps its derived ``BIN-PCN-group`` plan id.
NO_SHEET = PayerSheet()


def load_payer_sheet(path: str | Path) -> PayerSheet:
    """The sheet of ``path``; InputError naming file and line for a bad or repeated row."""
    plans: dict[Key, str] = {}
    lines: dict[Key, int] = {}
    for line, key, plan in _rows(str(path)):
        if key in lines:
            where = f"BIN {key[0]}, PCN {key[1] or '(blank)'}, group {key[2] or '(any)'}"
            raise InputError(
                str(path), f"a second row for {where} (first: line {lines[key]})", line
            )
        plans[key], lines[key] = plan, line
    return PayerSheet(plans)


def _rows(path: str) -> Iterator[tuple[int, Key, str]]:
    try:
        handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115 - closed by with
    except OSError as exc:
        raise InputError(path, f"cannot open payer sheet: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not set(COLUMNS) <= set(reader.fieldnames):
            raise InputError(path, f"payer sheet header must name {', '.join(COLUMNS)}", 1)
        try:
            for row in reader:
                yield reader.line_num, *_row(row, path, reader.line_num)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise InputError(path, f"not a CSV payer sheet: {exc}", reader.line_num) from None


def _row(row: dict[str, str | None], path: str, line: int) -> tuple[Key, str]:
    bin_, pcn, group, plan = ((row.get(name) or "").strip() for name in COLUMNS)
    if not (len(bin_) == 6 and bin_.isascii() and bin_.isdigit()):
        raise InputError(path, "field bin: must be 6 digits", line)
    if len(pcn) > PCN_MAX:
        raise InputError(path, f"field pcn: up to {PCN_MAX} characters", line)
    if len(group) > GROUP_MAX:
        raise InputError(path, f"field group_id: up to {GROUP_MAX} characters", line)
    if not 1 <= len(plan) <= PLAN_ID_MAX:
        raise InputError(path, f"field plan_id: 1 to {PLAN_ID_MAX} characters", line)
    return (bin_, pcn, group), plan
