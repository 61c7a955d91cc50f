"""Ingestion: a reader's record becomes a PHI-free work record and a sealed vault blob.

The producer runs it for the formats it reads itself; the intake link
(``rxfleet.links.intake``) runs it in the cpu workers for the slices a producer
ships. Either way PHI is checked, sealed into the vault (AES-GCM) and replaced by
a keyed token before the record is written to Redis or any message is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.dates import parse_date
from rxfleet.claims.fields import CANONICAL_FIELDS, DEFAULT_TRANSACTION, PHI_FIELDS
from rxfleet.claims.phi import PhiTokenizer, VaultCipher
from rxfleet.claims.rules import RULES
from rxfleet.claims.text import (
    PLAIN_TYPES,
    derived_id,
    escaped,
    fields_hold_control,
    has_control,
    holds_control,
)
from rxfleet.claims.validation import Issue, check_phi, split_phi
from rxfleet.claims.work import WorkRecord
from rxfleet.formats.base import Record
from rxfleet.stores.runs import RunStore


@dataclass
class Ingest:
    """Turns reader records into PHI-free work records plus sealed vault blobs."""

    run_id: str
    tokenizer: PhiTokenizer
    vault: VaultCipher

    def __call__(
        self, record: Record, seq: int, fmt: str = "jsonl"
    ) -> tuple[WorkRecord, str | None]:
        controls = control_issues(record)
        rest, phi = split_phi(record.fields)
        claim_id = self._claim_id(record)
        if record.keyed_id is not None:  # the keyed id is the record's claim_id field
            rest["claim_id"] = claim_id
        work = WorkRecord(
            seq=seq,
            source=record.source,
            line=record.number,
            transaction=record.transaction,
            fmt=fmt,
            claim_id=claim_id,
            key=self._key(claim_id, record.fields),
            fields=_safe_fields(rest, bool(controls)),
            patient_token=self._token(record.fields, phi),
        )
        if record.problem is not None:  # the reader's word is the one that matters
            work.add_issues([_problem_issue(record), *controls])
            work.quarantine()
        elif controls:
            work.add_issues(controls)
            work.quarantine()
        else:
            work.add_issues(check_phi(record.fields))
        work.trail(AuditStage.INGESTED, codes=[issue.code for issue in work.issues])
        sealed = None
        if any(value is not None for value in phi.values()):
            sealed = self.vault.seal(phi, context=f"{self.run_id}:{seq}")
        return work, sealed

    def _key(self, claim_id: str | None, fields: dict[str, Any]) -> str | None:
        """The submission's Idempotency-Key, from the raw content (PHI included)."""
        if claim_id is None:
            return None
        return self.tokenizer.submission_key(claim_id, submission_content(fields))

    def _claim_id(self, record: Record) -> str | None:
        keyed = record.keyed_id
        if keyed is not None:
            return self.tokenizer.claim_id(keyed.prefix, keyed.parts)
        return _named(record)

    def _token(self, fields: dict[str, Any], phi: dict[str, str | None]) -> str | None:
        """The person's token: cardholder id and person code, else relationship and
        date of birth (:meth:`PhiTokenizer.person_token`)."""
        cardholder = phi.get("cardholder_id")
        if not cardholder:
            return None
        return self.tokenizer.person_token(
            cardholder,
            person_code=_text_or_none(fields.get("person_code")),
            relationship=_text_or_none(fields.get("patient_relationship_code")),
            date_of_birth=_iso_or_raw(phi.get("date_of_birth")),
        )


def submission_content(fields: dict[str, Any]) -> dict[str, str]:
    """A submission's canonical content: each canonical field (PHI included) as
    trimmed text (dates ISO, numbers without trailing zeros), blanks left out, the
    transaction code defaulted to B1: a re-read of the same input, in any format,
    gives the same content; a corrected value gives another."""
    content = {"transaction_code": DEFAULT_TRANSACTION}
    for name, value in fields.items():
        if name in CANONICAL_FIELDS and name != "claim_id":
            text = _content_text(name, _primitive(value))
            if text:
                content[name] = text
    return content


#: Fields whose value is a number: 30, "30.0" and "030" are one content.
_NUMBER_FIELDS = frozenset(
    {"quantity_dispensed", "days_supply", "fill_number", "ingredient_cost_submitted",
     "usual_and_customary", "gross_amount_due"}
)  # fmt: skip


def _content_text(name: str, value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    text = "" if value is None else str(value).strip()
    if name not in _NUMBER_FIELDS or not text.isascii():
        return text
    try:
        number = Decimal(text)
    except ArithmeticError:
        return text
    if not number.is_finite() or abs(number.adjusted()) > 12:  # out of every range: as read
        return text
    return format(number.normalize(), "f")


def _iso_or_raw(value: str | None) -> str | None:
    """A date of birth as ISO (one person, one token, whatever the file's date form)."""
    try:
        return parse_date(value).isoformat() if value else None
    except (ValueError, TypeError, OverflowError):
        return value


def _text_or_none(value: Any) -> str | None:
    """The value as trimmed text; None when absent or blank."""
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _named(record: Record) -> str | None:
    """The record's claim id; one derived from file and line when its own holds a
    control character (the raw value never travels)."""
    value = record.fields.get("claim_id")
    if holds_control(value):
        return derived_id(record.source, record.number)
    return _text_or_none(value)


def control_issues(record: Record) -> list[Issue]:
    """``CONTROL_CHARACTER`` for each field (PHI or not) whose text holds NUL, DEL or a
    C0 control other than tab; the message names file, line and field, never a value."""
    if not fields_hold_control(record.fields):
        return []
    where = f"{PurePath(record.source).name}:{record.number}"
    issues = []
    for name, value in record.fields.items():
        if holds_control(value) or has_control(str(name)):
            field = escaped(str(name), 64)
            message = f"{where}: field {field} holds a control character"
            issues.append(Issue.of("CONTROL_CHARACTER", field, message))
    return issues


def _safe_fields(fields: dict[str, Any], controls: bool = True) -> dict[str, Any]:
    """Canonical non-PHI values as JSON primitives; unknown fields by name only.

    An unknown field's value is never kept: upstream files put member names in
    the oddest columns. Validation still flags the field by its name. A value
    holding a control character is kept blank (``controls``: False when no field
    holds one, and none is looked at again).
    """
    safe: dict[str, Any] = {}
    for name, value in fields.items():
        if name in CANONICAL_FIELDS and name not in PHI_FIELDS:
            safe[name] = "" if controls and holds_control(value) else _primitive(value)
        elif name not in PHI_FIELDS:
            safe[escaped(str(name), 64)] = ""
    return safe


def _primitive(value: Any) -> Any:
    if type(value) in PLAIN_TYPES:
        return value
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, list):  # compound ingredients: a list of objects
        return [_primitive(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _primitive(item) for key, item in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _problem_issue(record: Record) -> Issue:
    problem = record.problem
    assert problem is not None
    code = problem.code if problem.code in RULES else "MALFORMED_RECORD"
    return Issue(code, problem.field, problem.message)


def mark_duplicates(runs: RunStore, run_id: str, works: Sequence[WorkRecord]) -> None:
    """A claim id and transaction (``WorkRecord.duplicate_id``) carried by an earlier
    sequence number of the run is quarantined here."""
    keyed = [(w.duplicate_id, w.seq) for w in works if w.duplicate_id]
    firsts = dict(zip((seq for _, seq in keyed), runs.first_seen(run_id, keyed), strict=True))
    for work in works:
        if work.duplicate_id and firsts[work.seq] != work.seq and not work.quarantined:
            work.add_issues([Issue.of("DUPLICATE_CLAIM_ID")])
            work.quarantine()
            work.events[-1]["codes"] = [issue.code for issue in work.issues]
