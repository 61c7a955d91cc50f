"""The working record of one claim in one run, as it moves link to link.

Stored as JSON in the run's ``work`` hash under the claim's sequence number.
It holds no PHI: the producer has already sealed the PHI into the vault and put
``patient_token`` in its place. ``stage`` is the per-claim ledger: a link only
touches records at the stage before its own, so a retried or redelivered link
never redoes (or resends) a finished claim.
"""

from __future__ import annotations

import time
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.fields import DEFAULT_TRANSACTION, RESULT_FIELDS, TRANSACTION_CODES
from rxfleet.claims.rejects import HOST_ERROR_REJECT, Reason, Route, Status
from rxfleet.claims.rules import Severity, rule, worst
from rxfleet.claims.validation import Issue


class Stage(IntEnum):
    INGESTED = 0
    VALIDATED = 1
    MAPPED = 2
    SENT = 3
    ROUTED = 4


class IssueDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    field: str | None = None
    message: str

    @classmethod
    def of(cls, issue: Issue) -> IssueDoc:
        return cls(code=issue.code, field=issue.field, message=issue.message)


class WorkRecord(BaseModel):
    """One claim's state in a run. JSON primitives only."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    source: str
    line: int
    fmt: str = "jsonl"
    transaction: int | None = None  # NCPDP: the transaction's place in its transmission
    cursor: str | None = None  # a payer portal's claim: its cursor (``source`` is the portal)
    claim_id: str | None = None
    key: str | None = None  # the submission's Idempotency-Key (made at ingestion)
    fields: dict[str, Any] = Field(default_factory=dict)
    patient_token: str | None = None
    stage: Stage = Stage.INGESTED
    quarantined: bool = False
    issues: list[IssueDoc] = Field(default_factory=list)
    claim: dict[str, Any] | None = None
    ndc11: str | None = None
    gpi: str | None = None
    attempts: int = 0
    failures: int = 0
    #: When the crosswalk link first found the NDC unknown while a formulary update
    #: waited (TRANSIENT); None when the claim is not waiting.
    waiting_since: float | None = None
    response_status: str | None = None
    reject_codes: list[str] = Field(default_factory=list)
    route: Route | None = None
    status: Status | None = None
    reason: str | None = None
    #: The payer's paid answer: 503-F3 and the pricing (Decimal text, to the cent).
    authorization_number: str | None = None
    amount_paid: str | None = None
    patient_pay: str | None = None
    ingredient_cost_paid: str | None = None
    events: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"

    @property
    def origin(self) -> str:
        """The result's ``source``: ``file:line``, NCPDP ``file:line:transaction``, a
        payer portal's claim ``portal:<cursor>``."""
        if self.cursor is not None:
            return f"portal:{self.cursor}"
        return self.where if self.transaction is None else f"{self.where}:{self.transaction}"

    @property
    def transaction_code(self) -> str | None:
        """B1, B2 or B3 as submitted (absent: B1); None for a code that is none of them."""
        code = self.fields.get("transaction_code") or DEFAULT_TRANSACTION
        return code if code in TRANSACTION_CODES else None

    @property
    def duplicate_id(self) -> str | None:
        """What a run carries at most once (``DUPLICATE_CLAIM_ID``): a claim's billing
        is its claim id, its reversal or rebill ``{claim_id}/B2`` or ``/B3``, so a
        B2 after its B1 in one file is no duplicate, a second B1 is (docs/formats.md)."""
        if not self.claim_id:
            return None
        code = str(self.fields.get("transaction_code") or DEFAULT_TRANSACTION)
        return self.claim_id if code == DEFAULT_TRANSACTION else f"{self.claim_id}/{code}"

    @property
    def severity(self) -> Severity:
        return worst([rule(issue.code).severity for issue in self.issues])

    def trail(self, stage: AuditStage, **detail: Any) -> None:
        """Add a step to the claim's audit trail (ids, codes, outcomes: never a value)."""
        self.events.append({"stage": stage, "at": time.time(), **detail})

    def add_issues(self, issues: list[Issue] | tuple[Issue, ...]) -> None:
        self.issues.extend(IssueDoc.of(issue) for issue in issues)

    def quarantine(self) -> None:
        """Stop here: never sent, dead-lettered with its codes (reason ``VALIDATION``
        unless the fleet gave one: ``UNRECORDABLE``)."""
        self.quarantined = True
        self.reason = self.reason or Reason.VALIDATION
        self.status = Status.QUARANTINED
        self.route = Route.DEAD_LETTER
        self.stage = Stage.ROUTED

    def sent(self) -> None:
        """The gateway answered (``response_status``, ``reject_codes``): on to routing."""
        self.stage = Stage.SENT
        self.trail(AuditStage.SENT, outcome=self.response_status, codes=list(self.reject_codes),
                   attempt=self.attempts)  # fmt: skip

    def reject(self, code: str, reason: str | None = None) -> None:
        """End the claim as rejected with ``code`` (a payer-style answer the fleet gives itself)."""
        self.response_status = "R"
        self.reject_codes = [code]
        self.reason = reason
        self.sent()

    def end_aborted(self) -> None:
        """An open claim of an aborted run: never sent, rejected 99 for the reason ``ABORTED``."""
        self.reject(HOST_ERROR_REJECT, Reason.ABORTED)
        self.status, self.route, self.stage = Status.REJECTED, Route.HOST_ERROR, Stage.ROUTED

    def result(self) -> dict[str, Any]:
        """The claim's row of the results, keyed by ``RESULT_FIELDS``."""
        row = {
            "claim_id": self.claim_id,
            "status": self.status,
            "severity": self.severity.value,
            "errors": [issue.code for issue in self.issues],
            "ndc11": self.ndc11,
            "gpi": self.gpi,
            "reject_codes": list(self.reject_codes),
            "route": self.route,
            "patient_token": self.patient_token,
            "attempts": self.attempts,
            "transaction_code": self.transaction_code,
            "reason": self.reason,
            "amount_paid": self.amount_paid,
            "patient_pay": self.patient_pay,
            "authorization_number": self.authorization_number,
            "source": self.origin,
        }
        assert tuple(row) == RESULT_FIELDS
        return row
