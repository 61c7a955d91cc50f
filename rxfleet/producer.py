"""The producer: read inputs as a stream, split PHI off, cut batches, send chains.

PHI never travels: each record's PHI fields are checked, sealed into the vault
(AES-GCM) and replaced by a keyed token before the record is written to Redis
or any message is sent. Batches are cut as the input streams by, so memory
stays flat whatever the size of the file, and the producer waits for room when
the run already holds ``RXFLEET_MAX_INFLIGHT`` claims in flight (backpressure:
Redis stays the size of that window, and the first results arrive while the
file is still being read).

A run is produced by one producer at a time (a lease in Redis, renewed every
batch); a second producer of the same run follows the first and takes the run
over when the first's lease runs out (``take_run``). The producer checkpoints
how far it got in the database; a producer that picks a run up again (after
a crash, or after Redis lost its data) re-reads the input and enqueues exactly
the claims that are neither recorded nor in flight, under the same sequence
numbers and claim ids: nothing is enqueued twice, every Idempotency-Key is the
same.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from pathlib import PurePath
from typing import Any

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.dates import parse_date
from rxfleet.claims.fields import CANONICAL_FIELDS, DEFAULT_TRANSACTION, PHI_FIELDS
from rxfleet.claims.phi import PhiTokenizer, VaultCipher
from rxfleet.claims.rules import RULES
from rxfleet.claims.text import derived_id, escaped, has_control, holds_control
from rxfleet.claims.validation import Issue, check_phi, split_phi
from rxfleet.claims.work import WorkRecord
from rxfleet.errors import InfrastructureError, InputError
from rxfleet.formats import detect_format, reader_for
from rxfleet.formats.base import Record
from rxfleet.formats.payer_sheet import PayerSheet
from rxfleet.formats.x12 import Routes
from rxfleet.lifecycle import RunPlan, Say, finish_if_complete
from rxfleet.stores.database import Database
from rxfleet.stores.order import ClaimOrder, entry_of
from rxfleet.stores.runs import RunStore

SendBatch = Callable[[str, int, int], object]


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
            fields=_safe_fields(rest),
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
    where = f"{PurePath(record.source).name}:{record.number}"
    issues = []
    for name, value in record.fields.items():
        if holds_control(value) or has_control(str(name)):
            field = escaped(str(name), 64)
            message = f"{where}: field {field} holds a control character"
            issues.append(Issue.of("CONTROL_CHARACTER", field, message))
    return issues


def _safe_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Canonical non-PHI values as JSON primitives; unknown fields by name only.

    An unknown field's value is never kept: upstream files put member names in
    the oddest columns. Validation still flags the field by its name.
    """
    safe: dict[str, Any] = {}
    for name, value in fields.items():
        if name in CANONICAL_FIELDS and name not in PHI_FIELDS:
            safe[name] = "" if holds_control(value) else _primitive(value)
        elif name not in PHI_FIELDS:
            safe[escaped(str(name), 64)] = ""
    return safe


def _primitive(value: Any) -> Any:
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


@dataclass
class ProduceResult:
    run_id: str
    total: int = 0
    batches: int = 0
    enqueued: int = 0  # claims written to Redis by this producer (fewer on a resume)
    cut_short: str | None = None  # why the input stopped being readable, if it did


@dataclass
class Producer:
    """Streams inputs into one run: batches, backpressure, checkpoints, resume."""

    runs: RunStore
    db: Database
    ingest: Ingest
    send: SendBatch
    payer_routes: Routes
    payer_sheet: PayerSheet
    batch_size: int
    max_inflight: int
    holder: str  # this producer's lease on the run
    lease: float = 15.0
    resume_from: int | None = None  # the checkpoint of a run picked up again
    on_wait: Callable[[int], None] = lambda in_flight: None
    order: ClaimOrder | None = None  # submissions of one claim id go out in input order

    @property
    def run_id(self) -> str:
        return self.ingest.run_id

    def produce(self, inputs: Sequence[str]) -> ProduceResult:
        """Every claim of ``inputs`` into the run, one chain per batch, in input order."""
        result = ProduceResult(self.run_id)
        try:
            for first, batch in _batches(
                _records(inputs, self.payer_routes, self.payer_sheet), self.batch_size
            ):
                self._batch(first, batch, result)
        except InputError as exc:
            if result.total == 0:
                raise
            result.cut_short = str(exc)
        self._produced(result)
        return result

    def _batch(self, first: int, batch: list[Tagged], result: ProduceResult) -> None:
        self._hold_lease()
        if self.runs.aborted(self.run_id):
            raise InputError(self.run_id, "the run was aborted")
        items = [self.ingest(record, first + i, fmt) for i, (fmt, record) in enumerate(batch)]
        mark_duplicates(self.runs, self.run_id, [work for work, _ in items])
        todo = self._missing(first, items)
        if todo or self._boundary(first):
            self._wait_for_room()
            self.runs.register_batch(self.run_id, first, len(batch))
            works, resuming = [w for w, _ in todo], self.resume_from is not None
            self._enter_order(works)
            result.enqueued += self.runs.add(
                self.run_id, works, _blobs(todo), only_missing=resuming
            )
            self.send(self.run_id, first, len(batch))
        result.batches += 1
        result.total = first + len(batch)
        self.db.set_run(self.run_id, produced=result.total)

    def _enter_order(self, works: list[WorkRecord]) -> None:
        """The claims to be sent take their place in their claim ids' order (a reversal
        in this run or another waits there for the billing ahead of it)."""
        if self.order is not None:
            entries = [entry_of(self.run_id, w) for w in works if not w.quarantined]
            self.order.enter(self.run_id, [e for e in entries if e is not None])

    def _missing(
        self, first: int, items: list[tuple[WorkRecord, str | None]]
    ) -> list[tuple[WorkRecord, str | None]]:
        """What of the batch is neither recorded nor in flight (all of it on a first pass)."""
        if self.resume_from is None:
            return items
        seqs = [work.seq for work, _ in items]
        recorded = self.db.recorded(self.run_id, first, first + len(items))
        present = self.runs.existing(self.run_id, seqs)
        return [(w, s) for w, s in items if w.seq not in recorded and w.seq not in present]

    def _boundary(self, first: int) -> bool:
        """A batch at or past the checkpoint may have lost its chain with its producer."""
        return self.resume_from is not None and first + self.batch_size > self.resume_from

    def _wait_for_room(self) -> None:
        while (in_flight := self.runs.in_flight(self.run_id)) >= self.max_inflight:
            self.on_wait(in_flight)
            self._hold_lease()
            time.sleep(0.2)

    def _hold_lease(self) -> None:
        if not self.runs.claim_producer(self.run_id, self.holder, self.lease):
            raise InfrastructureError(f"run {self.run_id}: another producer took the run over")

    def _produced(self, result: ProduceResult) -> None:
        self.runs.set_meta(self.run_id, total=result.total)
        self.db.set_run(
            self.run_id,
            state="produced",
            total=result.total,
            produced=result.total,
            note=f"cut short: {result.cut_short}" if result.cut_short else None,
        )
        self.runs.release_producer(self.run_id, self.holder)
        finish_if_complete(self.runs, self.db, self.run_id, self.runs.done(self.run_id))


def producer_holder() -> str:
    """A name for this producer's lease on a run, unique to this process and moment."""
    return f"{socket.gethostname()}:{os.getpid()}:{time.monotonic_ns()}"


def take_run(
    runs: RunStore, db: Database, plan: RunPlan, holder: str, lease: float, say: Say
) -> RunPlan | None:
    """The plan to produce under ``holder``'s lease on the run, or None: another producer
    held it and produced the whole input (the caller follows the run). While the other
    holds the lease this waits; when its lease runs out (it died) this takes the run
    over from the other's checkpoint."""
    if runs.claim_producer(plan.run_id, holder, lease):
        return plan
    say(f"another producer is enqueueing run {plan.run_id}: following it")
    produced = _await_producer(runs, db, plan.run_id, holder, lease)
    if produced is None:
        return None
    say(f"the other producer of run {plan.run_id} stopped at claim {produced}: taking over")
    return dataclasses.replace(plan, resumed=True, produced=produced)


def _await_producer(
    runs: RunStore, db: Database, run_id: str, holder: str, lease: float
) -> int | None:
    """Wait while another producer holds the run: None once it has produced the whole
    input; else (its lease ran out: it died) take the run over, and say how far it got."""
    while True:
        time.sleep(0.5)
        if not runs.claim_producer(run_id, holder, lease):
            continue
        row = db.get_run(run_id)
        if row is None or row["state"] != "producing":
            runs.release_producer(run_id, holder)
            return None
        return int(row["produced"] or 0)


def input_records(
    inputs: Iterable[str], payer_routes: Routes, payer_sheet: PayerSheet
) -> Iterator[tuple[str, Record]]:
    """Every record of ``inputs`` in order, with its format's name (a dry run reads these)."""
    return _records(inputs, payer_routes, payer_sheet)


def _records(
    inputs: Iterable[str], payer_routes: Routes, payer_sheet: PayerSheet
) -> Iterator[tuple[str, Record]]:
    for path in inputs:
        fmt = detect_format(path)
        for record in reader_for(fmt, payer_routes, payer_sheet)(path):
            yield fmt.value, record


Tagged = tuple[str, Record]


def _batches(records: Iterator[Tagged], size: int) -> Iterator[tuple[int, list[Tagged]]]:
    first = 0
    while batch := list(islice(records, size)):
        yield first, batch
        first += len(batch)


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


def _blobs(items: list[tuple[WorkRecord, str | None]]) -> dict[int, str]:
    return {work.seq: blob for work, blob in items if blob is not None}
