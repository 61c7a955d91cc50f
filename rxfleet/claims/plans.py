"""Plan limits for the cross-field rules (``config/plan_limits.json``, versioned data).

Two rules of seed 004 read it (``rxfleet.claims.validation``):

* ``RELATIONSHIP_MISMATCH``: a patient relationship code (306-C6) of
  1 (cardholder) with a person code (303-C3) that is not a cardholder's, or 2-4
  (spouse, child, other) with a cardholder's person code;
* ``DAYS_SUPPLY_OVER_PLAN_MAX``: a days supply (405-D5) over the plan's maximum.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rxfleet.errors import ConfigError


class PlanLimit(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_days_supply: int = Field(ge=1, le=365)


class PlanLimits(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    about: str = ""
    cardholder_person_codes: frozenset[str] = frozenset()
    plans: dict[str, PlanLimit] = Field(default_factory=dict)

    def max_days_supply(self, plan_id: str | None) -> int | None:
        limit = self.plans.get(plan_id or "")
        return limit.max_days_supply if limit else None


#: No limits: the cross-field rules have nothing to check against.
NO_LIMITS = PlanLimits(version="none")


@cache
def load_plan_limits(path: Path) -> PlanLimits:
    """The limits in ``path`` (read once per process); ConfigError naming the field."""
    try:
        return PlanLimits.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read plan limits: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: plan limits are not JSON") from None
    except ValidationError as exc:
        where = ".".join(str(p) for p in exc.errors()[0]["loc"])
        raise ConfigError(f"{path}: plan limits field {where}: {exc.errors()[0]['msg']}") from None
