"""What every reader yields: one ``Record`` per input claim, in input order."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Canonical field names (CONTRACT section 3), in contract order.
CANONICAL_FIELDS: tuple[str, ...] = (
    "claim_id",
    "bin",
    "pcn",
    "group_id",
    "cardholder_id",
    "patient_first_name",
    "patient_last_name",
    "date_of_birth",
    "service_provider_id",
    "date_of_service",
    "rx_number",
    "fill_number",
    "ndc",
    "quantity_dispensed",
    "days_supply",
    "prescriber_id",
    "ingredient_cost_submitted",
    "usual_and_customary",
    "plan_id",
    "pos",
)

#: Fields that are PHI: split off into the vault at ingestion.
PHI_FIELDS: tuple[str, ...] = (
    "cardholder_id",
    "patient_first_name",
    "patient_last_name",
    "date_of_birth",
)


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a record could not be read as a claim. ``message`` never quotes a value."""

    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """One input claim as read: canonical field names to raw values.

    ``number`` is where a person finds it: the line for line-based formats, the
    row for Parquet, the segment of the ``LIN`` for X12. A record the reader could
    not make sense of carries a ``problem`` and whatever fields it could read
    (at least ``claim_id`` when known), so it is quarantined, never dropped.
    """

    source: str
    number: int
    fields: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None


class Reader(Protocol):
    """A streaming reader: constant memory whatever the size of the file."""

    def __call__(self, path: str) -> Iterator[Record]: ...
