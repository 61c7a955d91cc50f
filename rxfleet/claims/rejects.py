"""The reject-code matrix: NCPDP reject codes (511-FB) to routing states.

The matrix is versioned data (``config/reject_codes.json``). Routing of a
rejected claim: plan override first, then the code's route; a code the matrix
does not know routes to ``REVIEW_REQUIRED``, never silently through. With more
than one reject code, the SET of codes decides, never their order: an unknown
code sends the claim to the default route (a person looks); otherwise the route
highest in the matrix's ``precedence`` list wins (the route a person must act on
first; the file states the reasoning).

Also here: the outcome of each D.0 transaction response status 112-AN
(:meth:`RejectMatrix.outcome_for`), which rejects are transient
(:meth:`RejectMatrix.transient`), and the ``Reason`` a claim ended where it did,
which decides whether the fleet may replay it (:func:`replayable`); and
:func:`matrix`, the matrix of a file read once per process.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

from rxfleet.errors import ConfigError


class Status(StrEnum):
    """A claim's terminal status in the results."""

    PAID = "PAID"
    REJECTED = "REJECTED"
    QUARANTINED = "QUARANTINED"
    REVERSED = "REVERSED"


#: What each status means (the docs' status list is generated from this table).
STATUS_MEANINGS: dict[Status, str] = {
    Status.PAID: "the payer paid or accepted it (112-AN `P`, `D`, `C`, `Q`, `A` or `S`, no"
    " reject code); route `CLEAN`",
    Status.REJECTED: "the payer rejected it (112-AN `R` or `F`, or any reject code), or the"
    " fleet did (`04` for a BIN/PCN the gateway does not know, `99` when it gave up)",
    Status.QUARANTINED: "a FATAL validation or crosswalk finding; never sent; route `DEAD_LETTER`",
    Status.REVERSED: "the payer accepted a reversal (`B2` answered 112-AN `A`, no reject code):"
    " the paid claim is off its books; route `CLEAN`, reason `PAYER`",
}


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
    NETWORK = "NETWORK"
    DUPLICATE = "DUPLICATE"


#: The reject codes the fleet gives a claim itself (a payer-style answer).
ROUTING_REJECT = "04"  # M/I Processor Control Number: the gateway has no such route (404)
HOST_ERROR_REJECT = "99"  # Host Processing Error: the fleet gave up, or the request was refused
FORMULARY_REJECT = "70"  # Product/Service Not Covered: the formulary pre-check, never sent


class Reason(StrEnum):
    """Why a claim ended on its route: the payer's word, or the fleet's own."""

    PAYER = "PAYER"  # the payer adjudicated (its reject codes, e.g. its own 99)
    TRANSIENT_EXHAUSTED = "TRANSIENT_EXHAUSTED"  # transient host rejects (90-98), retries used up
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"  # the fleet's transport retries used up (its "99")
    GATEWAY_REFUSED = "GATEWAY_REFUSED"  # the gateway refused our request (4xx)
    ROUTING_MISS = "ROUTING_MISS"  # the gateway does not know the BIN/PCN (404)
    ANSWER_MISMATCH = "ANSWER_MISMATCH"  # the gateway kept answering for another claim id
    ABORTED = "ABORTED"  # the run was aborted before the claim was sent
    VALIDATION = "VALIDATION"  # quarantined by the fleet's validation
    POISON = "POISON"  # its link kept killing its worker, or kept failing on it: a person looks
    UNRECORDABLE = "UNRECORDABLE"  # the database refused a value of it: recorded escaped
    FORMULARY = "FORMULARY"  # the formulary pre-check: not covered, rejected 70, never sent


#: What each reason means, one line each (the docs' reason list is generated from this).
REASON_MEANINGS: dict[Reason, str] = {
    Reason.PAYER: "the payer adjudicated: its reject codes stand (its own `99` included)",
    Reason.TRANSIENT_EXHAUSTED: "the payer's transient host rejects (90-98) outlived the"
    " fleet's retries: its codes stand, route `RETRY_LATER`",
    Reason.RETRIES_EXHAUSTED: "the fleet's transport retries were used up: `REJECTED` `99`,"
    " route `HOST_ERROR`",
    Reason.GATEWAY_REFUSED: "the gateway refused the request itself (4xx other than"
    " 401/404/429): `REJECTED` `99`",
    Reason.ROUTING_MISS: "the gateway does not know the BIN/PCN (404): `REJECTED` `04`,"
    " route `ROUTING_ERROR`",
    Reason.ANSWER_MISMATCH: "the gateway's answers named another claim id until the"
    " fleet's retries were used up (a gateway fault: never recorded against this claim):"
    " `REJECTED` `99`, route `HOST_ERROR`; a person asks the payer",
    Reason.ABORTED: "the run was aborted (`rxfleet abort`) before the claim was sent:"
    " `REJECTED` `99`, route `HOST_ERROR`",
    Reason.VALIDATION: "the fleet's own checks quarantined the claim before sending it"
    " (its codes say which: a missing field, a bad NDC, a duplicate claim id):"
    " `QUARANTINED`, route `DEAD_LETTER`; replayable only when its one fatal code is"
    " `MISSING_GPI_MAPPING` (after a crosswalk update)",
    Reason.POISON: "its link kept killing its worker (past `RXFLEET_MAX_DELIVERIES`"
    " deliveries), or kept failing on its batch (past as many re-drives by the sweeper):"
    " route `REVIEW_REQUIRED` when the"
    " gateway had answered, else `REJECTED` `99`, route `HOST_ERROR`; a person looks",
    Reason.UNRECORDABLE: "the database refused a value of the claim: `QUARANTINED`, route"
    " `DEAD_LETTER`, error `UNRECORDABLE_VALUE`; recorded escaped",
    Reason.FORMULARY: "the formulary pre-check: the payer's formulary (its latest webhook"
    " event) does not cover the NDC: `REJECTED` `70`, routed by the matrix, never sent",
}


#: Routes whose claims become dead letters, for a person or a replay (``rxfleet dlq``).
DEAD_LETTER_ROUTES = frozenset(
    {Route.DEAD_LETTER, Route.HOST_ERROR, Route.RETRY_LATER, Route.REVIEW_REQUIRED}
)


#: Reasons that are the fleet's own transport failure (or a transient host reject
#: that outlived its retries): the claim itself was never judged, so replaying it
#: unchanged may succeed. Everything else needs a person or a corrected claim.
REPLAYABLE_REASONS = frozenset(
    {Reason.RETRIES_EXHAUSTED, Reason.TRANSIENT_EXHAUSTED, Reason.ABORTED}
)


def replayable(route: Route | str, reason: Reason | str) -> bool:
    """True when a claim on ``route`` for ``reason`` may be replayed unchanged.

    Only the fleet's own transport failures (retries exhausted, aborted runs) and
    transient host rejects (90-98) that exhausted their retries; never a payer's
    adjudication (including the payer's reject 99), a refused request, a routing
    miss or a validation quarantine.
    """
    if Reason(reason) not in REPLAYABLE_REASONS:
        return False
    return Route(route) in (Route.RETRY_LATER, Route.HOST_ERROR, Route.DEAD_LETTER)


@dataclass(frozen=True, slots=True)
class ResponseOutcome:
    """What a transaction response status (112-AN) means for the claim.

    ``route`` None: route by the reject codes (status ``R``)."""

    status: Status
    route: Route | None
    meaning: str


CLEAN = Route.CLEAN
DEAD_LETTER = Route.DEAD_LETTER
REVIEW_REQUIRED = Route.REVIEW_REQUIRED


def normalize_codes(reject_codes: Iterable[str]) -> list[str]:
    """511-FB codes as the matrix knows them: blanks trimmed (``" 75"`` is ``75``), blank
    codes dropped, order kept."""
    return [code.strip() for code in reject_codes if code.strip()]


@dataclass(frozen=True, slots=True)
class RejectCode:
    code: str
    meaning: str
    category: str
    retryable: bool
    route: Route
    unsourced: bool = False  # no public source lists it: kept from the first cut, flagged


@dataclass(frozen=True)
class RejectMatrix:
    version: str
    codes: dict[str, RejectCode]
    plan_overrides: dict[str, dict[str, Route]]
    default_route: Route = REVIEW_REQUIRED
    precedence: tuple[Route, ...] = ()
    response_statuses: dict[str, ResponseOutcome] = field(default_factory=dict)
    route_meanings: dict[Route, str] = field(default_factory=dict)

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
        precedence = tuple(Route(route) for route in data.get("precedence", ()))
        if precedence and set(precedence) != set(Route):
            missing = sorted(set(Route) - set(precedence))
            raise ValueError(f"precedence must list every route once; missing {missing}")
        statuses = {
            code: ResponseOutcome(
                Status(spec["outcome"]),
                Route(spec["route"]) if spec.get("route") else None,
                spec["meaning"],
            )
            for code, spec in data.get("response_statuses", {}).items()
        }
        return cls(
            version=str(data["version"]),
            codes=codes,
            plan_overrides=overrides,
            default_route=Route(data.get("default_route", REVIEW_REQUIRED)),
            precedence=precedence,
            response_statuses=statuses,
            route_meanings={Route(r): str(m) for r, m in data.get("routes", {}).items()},
        )

    def route_for(self, reject_codes: list[str], plan_id: str | None = None) -> Route:
        """The routing state of a claim rejected with ``reject_codes`` (trimmed first)."""
        codes = set(normalize_codes(reject_codes))
        if not codes:
            return REVIEW_REQUIRED
        overrides = self.plan_overrides.get(plan_id or "", {})
        found = {overrides.get(code) or self._known(code) for code in codes}
        routes = {route for route in found if route is not None}
        if len(routes) < len(found):  # an unknown code: a person looks
            return self.default_route
        rank = {route: index for index, route in enumerate(self.precedence)}
        return min(routes, key=lambda route: (rank.get(route, len(rank)), str(route)))

    def _known(self, code: str) -> Route | None:
        entry = self.codes.get(code)
        return entry.route if entry else None

    def is_retryable(self, code: str) -> bool:
        entry = self.codes.get(code)
        return bool(entry and entry.retryable)

    def transient(self, reject_codes: Iterable[str]) -> bool:
        """True when every one of ``reject_codes`` is transient (host/system 90-98):
        the same claim may succeed if resent unchanged later (bounded, with backoff).
        False for no codes, or when any code is not transient or not known."""
        codes = set(reject_codes)
        return bool(codes) and all(self.is_retryable(code) for code in codes)

    def outcome_for(self, status: str) -> ResponseOutcome:
        """The outcome of a D.0 transaction response status (112-AN), from the matrix's
        ``response_statuses`` table. ``D`` (duplicate of paid) is the payer saying it
        already paid this claim: PAID. An unknown status: REJECTED, default route."""
        known = self.response_statuses.get(status)
        if known is not None:
            return known
        return ResponseOutcome(Status.REJECTED, self.default_route, "unknown 112-AN status")


@cache
def matrix(path: Path) -> RejectMatrix:
    """The matrix of ``path``, read once per process (a versioned file, never edited live)."""
    return RejectMatrix.load(path)
