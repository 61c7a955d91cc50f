"""The canonical claim, as it travels through the fleet after ingestion.

``Claim`` holds the non-PHI canonical fields (docs/formats.md) in their
normalized types, plus the NDC-11. The PHI fields never appear here: the
producer seals them into the vault and the claim carries ``patient_token``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from rxfleet.claims.fields import CLAIM_ID_PATTERN, REVERSAL

_NUMBERS = (
    "quantity_dispensed",
    "ingredient_cost_submitted",
    "usual_and_customary",
    "gross_amount_due",
)


class Ingredient(BaseModel):
    """One ingredient of a compound (NCPDP segment 10): 489-TE as an NDC-11, 448-ED
    quantity, 449-EE ingredient cost."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    ndc11: Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$")]
    quantity: Annotated[Decimal, Field(gt=0)]
    cost: Annotated[Decimal, Field(ge=0)]


class Claim(BaseModel):
    """A validated claim without PHI. Strict: no coercion, no extra fields."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    claim_id: Annotated[str, StringConstraints(pattern=CLAIM_ID_PATTERN)]
    bin: Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
    pcn: Annotated[str, StringConstraints(min_length=1, max_length=10)] | None = None
    group_id: str | None = None
    service_provider_id: str | None = None
    date_of_service: date
    rx_number: str | None = None
    fill_number: Annotated[int, Field(ge=0, le=99)] | None = None
    # None only for a reversal (B2): it carries no drug (validation's BY_TRANSACTION).
    ndc: str | None = None
    ndc11: Annotated[str, StringConstraints(pattern=r"^[0-9]{11}$")] | None = None
    quantity_dispensed: Annotated[Decimal, Field(gt=0)] | None = None
    days_supply: Annotated[int, Field(ge=1, le=365)] | None = None
    prescriber_id: str | None = None
    prescriber_id_qualifier: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")] | None = None
    ingredient_cost_submitted: Annotated[Decimal, Field(ge=0)] | None = None
    usual_and_customary: Annotated[Decimal, Field(ge=0)] | None = None
    plan_id: Annotated[str, StringConstraints(min_length=1)] | None = None  # a B2 needs none
    pos: Annotated[str, StringConstraints(pattern=r"^[0-9]{2}$")] | None = None
    gross_amount_due: Annotated[Decimal, Field(ge=0)] | None = None
    unit_of_measure: Literal["EA", "GM", "ML"] | None = None
    person_code: str | None = None
    patient_relationship_code: Annotated[str, StringConstraints(pattern=r"^[0-4]$")] | None = None
    compound_ingredients: list[Ingredient] | None = None
    patient_token: str | None = None
    transaction_code: Literal["B1", "B2", "B3"] = "B1"

    def gateway_fields(self) -> dict[str, Any]:
        """Canonical fields for the gateway body: NDC-11, JSON numbers, ISO dates."""
        return gateway_body(self.model_dump(mode="json"))


#: Fields the fleet keeps that the gateway is not sent.
_NOT_SENT = frozenset({"ndc11", "patient_token"})


#: The identifying fields of a paid claim: all a reversal (``B2``) body carries.
REVERSAL_FIELDS = (
    "claim_id",
    "bin",
    "pcn",
    "service_provider_id",
    "rx_number",
    "fill_number",
    "date_of_service",
)


def is_reversal(claim: Mapping[str, Any]) -> bool:
    """True for a claim or record whose ``transaction_code`` is ``B2`` (absent means
    ``B1``)."""
    return str(claim.get("transaction_code") or "").strip() == REVERSAL


def gateway_body(claim: Mapping[str, Any]) -> dict[str, Any]:
    """The gateway body of a validated claim in its JSON form (``model_dump(mode="json")``).

    A reversal's body is its identifying fields and ``transaction_code`` only
    (docs/protocol.md, "Reversal and rebill"). No model is rebuilt: the submit link calls this for
    every claim it sends.
    """
    if is_reversal(claim):
        body = {k: claim[k] for k in REVERSAL_FIELDS if claim.get(k) is not None}
        return {**body, "transaction_code": "B2"}
    body = {k: v for k, v in claim.items() if v is not None and k not in _NOT_SENT}
    body["ndc"] = claim["ndc11"]
    for name in _NUMBERS:
        if name in body:
            body[name] = float(body[name])
    if body.get("compound_ingredients"):  # docs/protocol.md: a list of {ndc11, quantity, cost}
        body["compound_ingredients"] = [
            {
                "ndc11": item["ndc11"],
                "quantity": float(item["quantity"]),
                "cost": float(item["cost"]),
            }
            for item in body["compound_ingredients"]
        ]
    return body
