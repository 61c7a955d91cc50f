"""The payer's formulary events (the webhook's body) and the entries they set.

An event is ``{"event_id", "sequence", "published_at", "changes": [...]}``; each
change sets one NDC-11's whole formulary state: its GPI-14, whether it is covered,
its tier, the prior-authorization and step-therapy flags and its quantity limit.
Events apply in ``sequence`` order (1, 2, 3, ...); the formulary's version is the
sequence of the last event applied (0: the crosswalk file alone).

``parse_event`` reads the raw body; anything that is not such an event raises
``EventRefused`` naming the field, never quoting a value.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from rxfleet.claims.crosswalk import CrosswalkEntry
from rxfleet.claims.gpi import is_gpi14

#: Most changes one event may carry (a bigger formulary update comes as several events).
MAX_CHANGES = 1000


class EventRefused(ValueError):
    """The body is not a formulary event; ``field`` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"field {field}: {reason}")
        self.field = field


class FormularyChange(BaseModel):
    """One NDC's formulary state after the event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ndc11: str = Field(pattern=r"^[0-9]{11}$")
    gpi14: str
    covered: bool
    tier: int | None = Field(default=None, ge=0, le=99)
    prior_auth: bool = False
    step_therapy: bool = False
    quantity_limit: Decimal | None = Field(default=None, gt=0, allow_inf_nan=False)

    @field_validator("gpi14")
    @classmethod
    def _gpi(cls, value: str) -> str:
        if not is_gpi14(value):
            raise ValueError("must be 14 digits")
        return value

    def entry(self) -> CrosswalkEntry:
        """The entry the crosswalk link reads for this NDC."""
        limit = self.quantity_limit
        return CrosswalkEntry(
            ndc11=self.ndc11,
            gpi14=self.gpi14,
            quantity_limit=str(limit) if limit is not None else None,
            prior_auth=self.prior_auth,
            step_therapy=self.step_therapy,
            covered=self.covered,
            tier=self.tier,
        )


class FormularyEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")
    sequence: int = Field(ge=1, le=2**62)
    published_at: datetime
    changes: list[FormularyChange] = Field(min_length=1, max_length=MAX_CHANGES)

    @field_validator("changes")
    @classmethod
    def _one_change_per_ndc(cls, changes: list[FormularyChange]) -> list[FormularyChange]:
        if len({c.ndc11 for c in changes}) != len(changes):
            raise ValueError("an NDC is changed twice in one event")
        return changes

    def entries(self) -> list[CrosswalkEntry]:
        return [change.entry() for change in self.changes]


def parse_event(raw: bytes) -> FormularyEvent:
    """The event in ``raw`` (UTF-8 JSON); ``EventRefused`` naming the field otherwise."""
    try:
        data: Any = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EventRefused("body", "not JSON") from None
    if not isinstance(data, dict):
        raise EventRefused("body", "not a JSON object")
    try:
        return FormularyEvent.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise EventRefused(where, str(first["msg"])) from None
