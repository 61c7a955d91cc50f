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
from pathlib import Path
from typing import Any

CLEAN = "CLEAN"
DEAD_LETTER = "DEAD_LETTER"
REVIEW_REQUIRED = "REVIEW_REQUIRED"


@dataclass(frozen=True, slots=True)
class RejectCode:
    code: str
    meaning: str
    category: str
    retryable: bool
    route: str


@dataclass(frozen=True)
class RejectMatrix:
    version: str
    codes: dict[str, RejectCode]
    plan_overrides: dict[str, dict[str, str]]
    default_route: str = REVIEW_REQUIRED

    @classmethod
    def load(cls, path: Path) -> RejectMatrix:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        codes = {code: RejectCode(code=code, **spec) for code, spec in data["codes"].items()}
        return cls(
            version=str(data["version"]),
            codes=codes,
            plan_overrides=data.get("plan_overrides", {}),
            default_route=data.get("default_route", REVIEW_REQUIRED),
        )

    def route_for(self, reject_codes: list[str], plan_id: str | None = None) -> str:
        """The routing state of a claim rejected with ``reject_codes``."""
        if not reject_codes:
            return REVIEW_REQUIRED
        overrides = self.plan_overrides.get(plan_id or "", {})
        routes = [overrides.get(code) or self._known(code) for code in reject_codes]
        if any(route is None for route in routes):
            return self.default_route
        return str(routes[0])

    def _known(self, code: str) -> str | None:
        entry = self.codes.get(code)
        return entry.route if entry else None

    def is_retryable(self, code: str) -> bool:
        entry = self.codes.get(code)
        return bool(entry and entry.retryable)
