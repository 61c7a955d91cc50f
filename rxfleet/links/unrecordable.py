"""A batch the system of record refuses: the claim(s) it refuses end, the rest are recorded.

The database refuses some values for good (a NUL in text, an index row too large
for a 9,000-character id: :class:`~rxfleet.errors.ValueRefused`). Retrying such
a batch would fail the same way forever and leave its other claims unrecorded,
so the record link bisects it instead: every half that the database takes is
recorded as it is; a single claim it refuses ends ``QUARANTINED`` on
``DEAD_LETTER`` with the code ``UNRECORDABLE_VALUE`` and the reason
``UNRECORDABLE``, and is still recorded, its refused text values replaced by
safe forms: an id derived from file and line for a claim id that is not a valid
id, every other text escaped (``\\x00``) and cut short. Records out = claims in.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.fields import CLAIM_ID_PATTERN
from rxfleet.claims.rejects import Reason, Route, Status
from rxfleet.claims.rules import Severity
from rxfleet.claims.text import derived_id, escaped, escaped_deep
from rxfleet.errors import ValueRefused
from rxfleet.stores.database import AuditEvent, Database, DeadLetter, ResultRow

log = logging.getLogger("rxfleet.record")

CODE = "UNRECORDABLE_VALUE"
_VALID_ID = re.compile(CLAIM_ID_PATTERN)


class Origin(NamedTuple):
    """Where a claim came from: its file and line."""

    source: str
    line: int


@dataclass(frozen=True)
class Rows:
    """A batch's rows for the database, keyed together by seq."""

    results: list[ResultRow]
    events: list[AuditEvent]
    dead: list[DeadLetter]

    def only(self, seqs: set[int]) -> Rows:
        return Rows(
            [r for r in self.results if r.seq in seqs],
            [e for e in self.events if e.seq in seqs],
            [d for d in self.dead if d.seq in seqs],
        )

    def halves(self) -> tuple[Rows, Rows]:
        middle = len(self.results) // 2
        first = {r.seq for r in self.results[:middle]}
        rest = {r.seq for r in self.results[middle:]}
        return self.only(first), self.only(rest)


def record_isolating(
    db: Database, run_id: str, rows: Rows, origins: Mapping[int, Origin]
) -> tuple[int, list[ResultRow]]:
    """Record ``rows``; the results newly recorded and the rows as recorded (a refused
    claim's row is its ended form). Never retries a refused value."""
    try:
        return db.record(run_id, rows.results, rows.events, rows.dead), rows.results
    except ValueRefused as refused:
        if len(rows.results) > 1:
            first, rest = rows.halves()
            done_a, rows_a = record_isolating(db, run_id, first, origins)
            done_b, rows_b = record_isolating(db, run_id, rest, origins)
            return done_a + done_b, rows_a + rows_b
        (row,) = rows.results
        log.warning("run %s: seq %d refused by the database (%s): ended %s", run_id, row.seq,
                    refused.sqlstate, Reason.UNRECORDABLE)  # fmt: skip
        return _record_ended(db, run_id, rows, origins[row.seq])


def _record_ended(
    db: Database, run_id: str, rows: Rows, origin: Origin
) -> tuple[int, list[ResultRow]]:
    (row,) = rows.results
    name = _name(row.claim_id, origin)
    result = ended_result(row, name)
    events = [ended_event(e, name) for e in rows.events]
    dead = [ended_dead_letter(row, name, origin, rows.dead[0] if rows.dead else None)]
    try:
        return db.record(run_id, [result], events, dead), [result]
    except ValueRefused:  # not even escaped: the bare facts, with no trail
        bare = ResultRow(seq=row.seq, status=result.status, claim_id=name,
                         severity=result.severity, errors=[CODE], route=result.route,
                         reason=result.reason)  # fmt: skip
        return db.record(run_id, [bare]), [bare]


def _name(claim_id: str | None, origin: Origin) -> str:
    """The claim's own id when it is a valid one; else one derived from file and line."""
    if claim_id is not None and _VALID_ID.fullmatch(claim_id):
        return claim_id
    return derived_id(origin.source, origin.line)


def ended_result(row: ResultRow, name: str) -> ResultRow:
    """The result of a claim the database refused: quarantined, escaped, named ``name``."""
    return ResultRow(
        seq=row.seq,
        status=Status.QUARANTINED,
        claim_id=name,
        severity=Severity.FATAL,
        errors=[*escaped_deep(row.errors), CODE],
        ndc11=_escaped(row.ndc11),
        gpi=_escaped(row.gpi),
        reject_codes=escaped_deep(row.reject_codes),
        route=Route.DEAD_LETTER,
        patient_token=_escaped(row.patient_token),
        attempts=row.attempts,
        reason=Reason.UNRECORDABLE,
        transaction_code=_escaped(row.transaction_code),
        source=_escaped(row.source),
    )


def ended_event(event: AuditEvent, name: str) -> AuditEvent:
    """An audit row of a refused claim, every text escaped; its ``recorded`` step says so."""
    safe = dataclasses.replace(
        event,
        claim_id=name,
        stage=escaped(event.stage),
        outcome=_escaped(event.outcome),
        codes=escaped_deep(event.codes),
        detail=escaped_deep(dict(event.detail)),
    )
    if event.stage != AuditStage.RECORDED:
        return safe
    detail = {"route": Route.DEAD_LETTER, "reason": Reason.UNRECORDABLE}
    return dataclasses.replace(safe, outcome=Status.QUARANTINED, codes=[*safe.codes, CODE],
                               detail=detail)  # fmt: skip


def ended_dead_letter(
    row: ResultRow, name: str, origin: Origin, was: DeadLetter | None
) -> DeadLetter:
    """The dead letter of a refused claim (never replayable: the same values would fail)."""
    return DeadLetter(
        seq=row.seq,
        route=Route.DEAD_LETTER,
        claim_id=name,
        source=escaped(origin.source, 1000),
        line=origin.line,
        field=_escaped(was.field) if was else None,
        status=Status.QUARANTINED,
        codes=[*escaped_deep(was.codes if was else row.errors), CODE],
        reason=Reason.UNRECORDABLE,
    )


def _escaped(text: str | None) -> str | None:
    return None if text is None else escaped(text)
