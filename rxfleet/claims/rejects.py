"""The reject-code matrix: NCPDP reject codes (511-FB) to routing states.

The matrix is versioned data (``config/reject_codes.json``). Routing of a
rejected claim: plan override first, then the code's route; a code the matrix
does not know routes to ``REVIEW_REQUIRED``, never silently through. With more
than one reject code, the first code that the matrix knows decides, unless an
unknown code is present (then a person looks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rxfleet.errors import ConfigError


class Status(StrEnum):
    """A claim's terminal status in the results."""

    PAID = "PAID"
    REJECTED = "REJECTED"
    QUARANTINED = "QUARANTINED"


class Route(StrEnum):
    """Routing states: what happens next to a claim (meanings in the matrix file)."""

    CLEAN = "CLEAN"
    DEAD_LETTER = "DEAD_LETTER"
    REVIEW_REQUIRED = "REVIEW_REQUIRED"
    CORRECT_AND_RESUBMIT = "CORRECT_AND_RESUBMIT"
    ROUTING_ERROR = "ROUTING_ERROR"
    ELIGIBILITY = "ELIGIBILITY"
    PRIOR_AUTH = "PRIOR_AUTH"
    FORMULARY_EXCEPTION = "FORMULARY_EXCEPTION"
    PLAN_LIMITS = "PLAN_LIMITS"
    REFILL_TOO_SOON = "REFILL_TOO_SOON"
    DUR_REVIEW = "DUR_REVIEW"
    COORDINATION_OF_BENEFITS = "COORDINATION_OF_BENEFITS"
    RETRY_LATER = "RETRY_LATER"
    HOST_ERROR = "HOST_ERROR"


CLEAN = Route.CLEAN
DEAD_LETTER = Route.DEAD_LETTER
REVIEW_REQUIRED = Route.REVIEW_REQUIRED


@dataclass(frozen=True, slots=True)
class RejectCode:
    code: str
    meaning: str
    category: str
    retryable: bool
    route: Route


@dataclass(frozen=True)
class RejectMatrix:
    version: str
    codes: dict[str, RejectCode]
    plan_overrides: dict[str, dict[str, Route]]
    default_route: Route = REVIEW_REQUIRED

    @classmethod
    def load(cls, path: Path) -> RejectMatrix:
        """The matrix of ``path``; ConfigError naming the file for a bad one."""
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return cls._from_json(data)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"reject matrix {path}: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> RejectMatrix:
        codes = {
            code: RejectCode(code=code, **{**spec, "route": Route(spec["route"])})
            for code, spec in data["codes"].items()
        }
        overrides = {
            plan: {code: Route(route) for code, route in table.items()}
            for plan, table in data.get("plan_overrides", {}).items()
        }
        return cls(
            version=str(data["version"]),
            codes=codes,
            plan_overrides=overrides,
            default_route=Route(data.get("default_route", REVIEW_REQUIRED)),
        )

    def route_for(self, reject_codes: list[str], plan_id: str | None = None) -> Route:
        """The routing state of a claim rejected with ``reject_codes``."""
        if not reject_codes:
            return REVIEW_REQUIRED
        overrides = self.plan_overrides.get(plan_id or "", {})
        routes = [overrides.get(code) or self._known(code) for code in reject_codes]
        if any(route is None for route in routes):
            return self.default_route
        first = routes[0]
        assert first is not None
        return first

    def _known(self, code: str) -> Route | None:
        entry = self.codes.get(code)
        return entry.route if entry else None

    def is_retryable(self, code: str) -> bool:
        entry = self.codes.get(code)
        return bool(entry and entry.retryable)
