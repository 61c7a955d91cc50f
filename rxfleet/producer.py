"""The producer: read inputs as a stream, split PHI off, cut batches, send chains.

PHI never travels: each record's PHI fields are checked, sealed into the vault
(AES-GCM) and replaced by a keyed token before the record is written to Redis
or any message is sent. Batches are cut as the input streams by, so memory
stays flat whatever the size of the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from config import Settings
from rxfleet.claims.fields import CANONICAL_FIELDS, PHI_FIELDS
from rxfleet.claims.phi import PhiTokenizer, VaultCipher
from rxfleet.claims.rules import RULES
from rxfleet.claims.validation import Issue, check_phi, split_phi
from rxfleet.claims.work import WorkRecord
from rxfleet.formats import detect_format, preflight, reader_for
from rxfleet.formats.base import Record
from rxfleet.formats.x12 import Routes, load_payer_routes
from rxfleet.links.route import matrix
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.runs import RunStore, new_run_id

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
        rest, phi = split_phi(record.fields)
        work = WorkRecord(
            seq=seq,
            source=record.source,
            line=record.number,
            fmt=fmt,
            claim_id=_claim_id(record.fields.get("claim_id")),
            fields=_safe_fields(rest),
            patient_token=self._token(phi.get("cardholder_id")),
        )
        if record.problem is not None:  # the reader's word is the one that matters
            work.add_issues([_problem_issue(record)])
            work.quarantine()
        else:
            work.add_issues(check_phi(record.fields))
        sealed = None
        if any(value is not None for value in phi.values()):
            sealed = self.vault.seal(phi, context=f"{self.run_id}:{seq}")
        return work, sealed

    def _token(self, cardholder: str | None) -> str | None:
        return self.tokenizer.token(cardholder) if cardholder else None


def _claim_id(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _safe_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Canonical non-PHI values as JSON primitives; unknown fields by name only.

    An unknown field's value is never kept: upstream files put member names in
    the oddest columns. Validation still flags the field by its name.
    """
    safe: dict[str, Any] = {}
    for name, value in fields.items():
        if name in CANONICAL_FIELDS and name not in PHI_FIELDS:
            safe[name] = _primitive(value)
        elif name not in PHI_FIELDS:
            safe[str(name)[:64]] = ""
    return safe


def _primitive(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
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
    inputs: list[str] = field(default_factory=list)


def start_run(
    runs: RunStore,
    crosswalks: CrosswalkCache,
    settings: Settings,
    inputs: Sequence[str],
    batch_size: int,
) -> str:
    """Check every input, load the crosswalk, create the run; nothing is enqueued yet."""
    routes = load_payer_routes(settings.payer_routes)
    formats = [preflight(path, routes).value for path in inputs]
    crosswalk = crosswalks.load(settings.crosswalk)
    run_id = new_run_id()
    runs.create(
        run_id,
        {
            "inputs": "\n".join(str(Path(p)) for p in inputs),
            "formats": ",".join(formats),
            "crosswalk": crosswalk,
            "reject_matrix": matrix(settings.reject_matrix).version,
            "batch_size": str(batch_size),
            "state": "producing",
        },
    )
    return run_id


def produce(
    runs: RunStore,
    run_id: str,
    inputs: Sequence[str],
    ingest: Ingest,
    batch_size: int,
    send: SendBatch,
    payer_routes: Routes,
) -> ProduceResult:
    """Stream every input into the run, one chain per batch, in input order."""
    result = ProduceResult(run_id, inputs=list(inputs))
    for first, batch in _batches(_records(inputs, payer_routes), batch_size):
        items = [ingest(record, first + i, fmt) for i, (fmt, record) in enumerate(batch)]
        _flush(runs, run_id, items)
        send(run_id, first, len(batch))
        result.batches += 1
        result.total = first + len(batch)
    runs.set_meta(run_id, total=result.total, batches=result.batches, state="produced")
    runs.expire(run_id)
    return result


def _records(inputs: Iterable[str], payer_routes: Routes) -> Iterator[tuple[str, Record]]:
    for path in inputs:
        fmt = detect_format(path)
        for record in reader_for(fmt, payer_routes)(path):
            yield fmt.value, record


Tagged = tuple[str, Record]


def _batches(records: Iterator[Tagged], size: int) -> Iterator[tuple[int, list[Tagged]]]:
    first, batch = 0, []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield first, batch
            first, batch = first + size, []
    if batch:
        yield first, batch


def _flush(runs: RunStore, run_id: str, items: list[tuple[WorkRecord, str | None]]) -> None:
    works = [work for work, _ in items]
    firsts = runs.first_sightings(run_id, [w.claim_id for w in works])
    for work, first in zip(works, firsts, strict=True):
        if not first and not work.quarantined:
            work.add_issues([Issue.of("DUPLICATE_CLAIM_ID")])
            work.quarantine()
    sealed = {work.seq: blob for work, blob in items if blob is not None}
    runs.add(run_id, works, sealed)
