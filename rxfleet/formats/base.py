"""What every reader yields: one ``Record`` per input claim, in input order."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a record could not be read as a claim. ``message`` never quotes a value."""

    code: str
    message: str
    field: str | None = None


@dataclass(frozen=True, slots=True)
class KeyedId:
    """A claim id to be made at ingestion as a keyed token of ``parts`` (the
    reader has no key): for identities built of identifiers that must never
    appear in clear (X12 CLM01, a cardholder id). ``prefix`` starts the id."""

    prefix: str
    parts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Record:
    """One input claim as read: canonical field names to raw values.

    ``number`` is where a person finds it: the line for line-based formats, the
    row for Parquet, the segment of the ``LIN`` for X12. A record the reader could
    not make sense of carries a ``problem`` and whatever fields it could read
    (at least ``claim_id`` when known), so it is quarantined, never dropped.
    A record with a ``keyed_id`` gets its ``claim_id`` from it at ingestion. An NCPDP
    record names its ``transaction`` (its results ``source`` is ``file:line:transaction``).
    """

    source: str
    number: int
    fields: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None
    keyed_id: KeyedId | None = None
    transaction: int | None = None  # NCPDP: 1-based place in the transmission
