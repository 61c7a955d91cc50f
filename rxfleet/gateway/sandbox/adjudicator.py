"""The sandbox's adjudicator: plans, formulary and members as data, claims in, NCPDP answers out.

Pure and HTTP-free apart from the status an ``Answer`` carries. The checks run in
the order a processor runs them and the first failing one decides:

1. the body is a claim (required fields, types)         else 400 ``invalid_request``
2. BIN + PCN reach a processor                          else 404 ``unknown_route``
3. the group belongs to that route                      else R ``06`` (M/I Group ID)
4. the cardholder is not terminated                     else R ``65`` (Patient Is Not Covered)
5. the GPI is on the formulary and not excluded         else R ``70`` (Not Covered - Exclusion)
6. no prior authorization required                      else R ``75`` (Prior Authorization Required)
7. days supply within the plan's maximum, quantity within
   ``quantity_limit_per_30_days * days_supply / 30``     else R ``76`` (Plan Limitations Exceeded)
8. paid: ``P`` with an authorization number and pricing.

A reversal (``transaction_code: "B2"``) carries only the identifying fields of
the paid claim: ``check_reversal`` runs steps 1 and 2 on them (no eligibility,
no formulary); the books (``books``, kept by ``state``) decide ``A`` or ``R 87``.

Answers never echo PHI: only the claim id, the status, reject codes, an
authorization number and amounts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from rxfleet.errors import ConfigError

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class Route(BaseModel):
    """A BIN/PCN pair and the groups (group id -> plan id) it carries."""

    model_config = _FROZEN
    bin: str
    pcn: str
    processor: str
    groups: dict[str, str]


class Plan(BaseModel):
    """A benefit plan's limits and copays."""

    model_config = _FROZEN
    max_days_supply: int = Field(gt=0)
    copay_by_tier: dict[str, float]


class Drug(BaseModel):
    """A formulary entry, keyed by GPI-14."""

    model_config = _FROZEN
    tier: int | None = None
    excluded: bool = False
    prior_auth: bool = False
    quantity_limit_per_30_days: float | None = Field(None, gt=0)


class Members(BaseModel):
    """Member eligibility: every cardholder is covered unless terminated."""

    model_config = _FROZEN
    terminated: frozenset[str] = frozenset()


class Pricing(BaseModel):
    """Pricing constants."""

    model_config = _FROZEN
    dispensing_fee: float = Field(ge=0)


class PlanBook(BaseModel):
    """config/sandbox_plans.json."""

    model_config = _FROZEN
    version: str
    about: str = ""
    routes: tuple[Route, ...]
    plans: dict[str, Plan]
    formulary: dict[str, Drug]
    members: Members
    pricing: Pricing

    @model_validator(mode="after")
    def _groups_name_plans(self) -> PlanBook:
        for route in self.routes:
            for group, plan in route.groups.items():
                if plan not in self.plans:
                    raise ValueError(f"group {group} names unknown plan {plan}")
        return self

    @classmethod
    def load(cls, path: Path) -> PlanBook:
        """Read and check a plan file; a bad one is a ``ConfigError``."""
        try:
            return cls.model_validate_json(path.read_bytes())
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read plans ({exc.strerror})") from None
        except ValidationError as exc:
            raise ConfigError(f"{path}: invalid plan file ({exc.error_count()} errors)") from exc


def _whole_number(value: object) -> object:
    """30.0 is the number 30 (JSON has one number type); 30.5 and "30" stay invalid."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class IngredientRequest(BaseModel):
    """One compound ingredient of a claim body (docs/protocol.md)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    ndc11: str = Field(pattern=r"^[0-9]{11}$")
    quantity: float = Field(gt=0, strict=True)
    cost: float = Field(ge=0, strict=True)


class ClaimRequest(BaseModel):
    """The part of a claim body the sandbox reads (docs/protocol.md); the rest is ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    claim_id: str = Field(min_length=1, max_length=64)
    bin: str = Field(pattern=r"^[0-9]{6}$")
    pcn: str = Field(min_length=1, max_length=10)
    group_id: str | None = None
    cardholder_id: str = Field(min_length=1, max_length=20)
    date_of_service: date
    ndc: str = Field(pattern=r"^[0-9]{11}$")
    gpi: str | None = Field(None, pattern=r"^[0-9]{14}$")
    quantity_dispensed: float = Field(gt=0, strict=True)
    # Optional: an X12 837 drug line (a physician-administered drug) has no days supply.
    days_supply: Annotated[int, BeforeValidator(_whole_number)] | None = Field(
        None, gt=0, strict=True
    )
    ingredient_cost_submitted: float | None = Field(None, ge=0, strict=True)
    usual_and_customary: float | None = Field(None, ge=0, strict=True)
    # A compound: adjudicated by ``ndc`` (its first ingredient); the list is checked.
    compound_ingredients: tuple[IngredientRequest, ...] | None = None


class ReversalRequest(BaseModel):
    """A reversal body (``B2``): the identifying fields of the paid claim. An X12 void
    carries no fill number (an 837 has none) and an Rx number only when REF*XZ gave
    one: the books then find the claim as they filed it (``books.book_key``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    claim_id: str = Field(min_length=1, max_length=64)
    transaction_code: Literal["B2"]
    bin: str = Field(pattern=r"^[0-9]{6}$")
    pcn: str = Field(min_length=1, max_length=10)
    service_provider_id: str = Field(min_length=1, max_length=15)
    rx_number: str | None = Field(default=None, min_length=1, max_length=50)
    fill_number: Annotated[int, BeforeValidator(_whole_number)] | None = Field(
        default=None, ge=0, le=99, strict=True
    )
    date_of_service: date


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP status and the JSON body that goes with it."""

    status: int
    body: dict[str, Any]


def invalid_request(field: str) -> Answer:
    """400 naming the offending field (never its value)."""
    return Answer(400, {"error": "invalid_request", "field": field})


class Adjudicator:
    """Adjudicates claim bodies against one ``PlanBook``."""

    def __init__(self, plans: PlanBook) -> None:
        self.plans = plans
        self._routes = {(r.bin, r.pcn): r for r in plans.routes}

    def adjudicate(
        self, claim: Mapping[str, Any], unknown_routes: frozenset[str] = frozenset()
    ) -> Answer:
        """The gateway's answer to one claim body (already parsed from JSON)."""
        try:
            req = ClaimRequest.model_validate(claim)
        except ValidationError as exc:
            return invalid_request(_first_field(exc))
        route = self._routes.get((req.bin, req.pcn))
        if route is None or f"{req.bin}/{req.pcn}" in unknown_routes:
            return Answer(404, {"error": "unknown_route"})
        plan_id = route.groups.get(req.group_id or "")
        if plan_id is None:
            return _rejected(req, "06")
        if req.cardholder_id in self.plans.members.terminated:
            return _rejected(req, "65")
        plan = self.plans.plans[plan_id]
        drug = self.plans.formulary.get(req.gpi or "")
        code = _coverage_reject(req, plan, drug)
        if code is not None or drug is None:
            return _rejected(req, code or "70")
        return Answer(200, self._paid(req, plan, drug))

    def check_reversal(
        self, claim: Mapping[str, Any], unknown_routes: frozenset[str] = frozenset()
    ) -> Answer | None:
        """None when a reversal body is well formed and routed; else its 400 or 404."""
        try:
            req = ReversalRequest.model_validate(claim)
        except ValidationError as exc:
            return invalid_request(_first_field(exc))
        if (req.bin, req.pcn) not in self._routes or f"{req.bin}/{req.pcn}" in unknown_routes:
            return Answer(404, {"error": "unknown_route"})
        return None

    def _paid(self, req: ClaimRequest, plan: Plan, drug: Drug) -> dict[str, Any]:
        submitted = [
            v for v in (req.ingredient_cost_submitted, req.usual_and_customary) if v is not None
        ]
        ingredient = min(submitted, default=0.0)
        fee = self.plans.pricing.dispensing_fee
        copay = plan.copay_by_tier.get(str(drug.tier), 0.0)
        patient_pay = min(copay, ingredient + fee)
        pricing = {
            "ingredient_cost_paid": round(ingredient, 2),
            "dispensing_fee_paid": round(fee, 2),
            "patient_pay_amount": round(patient_pay, 2),
            "total_amount_paid": round(ingredient + fee - patient_pay, 2),
        }
        return {
            "claim_id": req.claim_id,
            "transaction_response_status": "P",
            "reject_codes": [],
            "authorization_number": _authorization_number(req.claim_id),
            "formulary_tier": drug.tier,
            "pricing": pricing,
        }


def _coverage_reject(req: ClaimRequest, plan: Plan, drug: Drug | None) -> str | None:
    """The formulary and plan-limit reject code, or None when covered."""
    if drug is None or drug.excluded:
        return "70"
    if drug.prior_auth:
        return "75"
    days = req.days_supply
    if days is not None and days > plan.max_days_supply:
        return "76"
    limit = drug.quantity_limit_per_30_days
    if limit is not None and req.quantity_dispensed > limit * (days or 30) / 30:
        return "76"
    return None


def _rejected(req: ClaimRequest, code: str) -> Answer:
    return rejected(req.claim_id, code)


def rejected(claim_id: str, code: str) -> Answer:
    """200 ``R`` with one reject code."""
    body = {"claim_id": claim_id, "transaction_response_status": "R", "reject_codes": [code]}
    return Answer(200, body)


def reversed_answer(claim_id: str) -> Answer:
    """200 ``A``: the reversal was accepted."""
    body = {"claim_id": claim_id, "transaction_response_status": "A", "reject_codes": []}
    return Answer(200, body)


def _authorization_number(claim_id: str) -> str:
    """Deterministic, so that a replay and an original agree."""
    return "SBX" + hashlib.sha256(claim_id.encode()).hexdigest()[:12].upper()


def _first_field(exc: ValidationError) -> str:
    for error in exc.errors(include_input=False, include_url=False):
        if error["loc"]:
            return str(error["loc"][0])
    return "body"
