"""Generic Product Identifier: 14 digits, seven two-digit levels."""

from __future__ import annotations

from typing import NamedTuple

GPI_LEVELS: tuple[str, ...] = (
    "group",
    "class",
    "subclass",
    "name",
    "name_extension",
    "dosage_form",
    "strength",
)


class Gpi(NamedTuple):
    """A GPI split into its seven levels, each two digits."""

    group: str
    class_: str
    subclass: str
    name: str
    name_extension: str
    dosage_form: str
    strength: str


def is_gpi14(value: str) -> bool:
    """True when ``value`` is a 14-digit GPI (the all-zero placeholder is not one:
    Medi-Span drug groups, the first level, start at 01)."""
    return len(value) == 14 and value.isascii() and value.isdigit() and value != "0" * 14


def split_gpi(value: str) -> Gpi:
    """The seven levels of a 14-digit GPI; ValueError for anything else."""
    if not is_gpi14(value):
        raise ValueError("GPI must be 14 digits, not all zero")
    return Gpi(*(value[i : i + 2] for i in range(0, 14, 2)))
