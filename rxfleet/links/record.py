"""record: each claim's result and audit trail into the system of record, exactly once;
then the claim leaves Redis. Answered claims are routed by the reject matrix first
(``rxfleet.links.route``: a pure step, in memory, on the records read here).

The database write is one transaction per batch (results keyed by run and
position, ``ON CONFLICT DO NOTHING``: a redelivered batch writes nothing twice).
Only after it commits are the claims' Redis records and vault blobs dropped,
and the run's done count goes up by what was actually dropped, so a record
link killed between the two steps is finished by its redelivery, counted once.
The batch that records a run's last claim closes the run
(``lifecycle.finish_if_complete``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.rejects import DEAD_LETTER_ROUTES, Reason, RejectMatrix, Route
from rxfleet.claims.rejects import replayable as replayable_by_reason
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.lifecycle import finish_if_complete
from rxfleet.links import LinkReport, codes
from rxfleet.links.route import route_answered
from rxfleet.links.unrecordable import Origin, Rows, record_isolating
from rxfleet.stores.database import AuditEvent, Database, DeadLetter, ResultRow
from rxfleet.stores.metrics import claim_fields
from rxfleet.stores.order import ClaimOrder, entry_of
from rxfleet.stores.runs import RunStore

log = logging.getLogger("rxfleet.record")

SCHEMA_VERSION = "2"
REPLAYABLE_CODES = {"MISSING_GPI_MAPPING"}
_WARNINGS = {"OBSOLETE_NDC", "PRIOR_AUTH_FLAG", "QUANTITY_LIMIT_FLAG", "STEP_THERAPY_FLAG"}
_EVENT_FIELDS = {"stage", "at", "outcome", "codes", "attempt"}


def record_batch(
    runs: RunStore,
    db: Database,
    run_id: str,
    batch: range,
    trace: str,
    rejects: RejectMatrix | None,
    metrics_key: str | None = None,
    order: ClaimOrder | None = None,
) -> LinkReport:
    """Route the batch's answered claims by ``rejects`` (None: none is expected) and
    record every routed one; with ``metrics_key``, count them in the fleet's metrics
    (status, route, reject codes) as they are retired: exactly once. With ``order``,
    the recorded claims leave their claim ids' order."""
    report = LinkReport(run_id, "record")
    records = runs.load(run_id, batch)
    if rejects is not None:
        route_answered(records, rejects)
    ready = [r for r in records if r.stage == Stage.ROUTED]
    if len(ready) < len(records):
        log.error("run %s: %d claims of batch %d not routed", run_id, len(records) - len(ready),
                  batch.start)  # fmt: skip
    report.done, recorded = _record_rows(runs, db, run_id, ready, trace)
    report.skipped = len(batch) - report.done
    whole = len(ready) == len(records)
    tallies = [claim_fields(str(r.status), str(r.route), r.reject_codes) for r in recorded]
    _, done = runs.retire(run_id, batch.start if whole else -1, [r.seq for r in ready],
                          tallies, metrics_key)  # fmt: skip
    if order is not None:
        order.leave(run_id, [e for e in (entry_of(run_id, r) for r in ready) if e is not None])
    finish_if_complete(runs, db, run_id, done)
    return report


def _record_rows(
    runs: RunStore, db: Database, run_id: str, ready: Sequence[WorkRecord], trace: str
) -> tuple[int, list[ResultRow]]:
    """Record the claims' rows; a claim whose values the database refuses ends
    ``UNRECORDABLE`` and is recorded escaped (:mod:`rxfleet.links.unrecordable`)."""
    sealed = _sealed_for_replay(runs, run_id, ready)
    rows = Rows(
        [ResultRow.of(r) for r in ready],
        [event for r in ready for event in audit_events(r, trace)],
        [dead_letter(r, sealed.get(r.seq)) for r in ready if r.route in DEAD_LETTER_ROUTES],
    )
    origins = {r.seq: Origin(r.source, r.line) for r in ready}
    return record_isolating(db, run_id, rows, origins)


def replayable(record: WorkRecord) -> bool:
    """A dead letter a replay can fix: the fleet's own give-up, or a crosswalk miss
    (a validation quarantine is replayable by its codes, not by its reason)."""
    if record.reason not in (None, Reason.VALIDATION) and record.route is not None:
        return replayable_by_reason(record.route, record.reason)
    fatal = set(codes(record)) - _WARNINGS
    return record.route == Route.DEAD_LETTER and bool(fatal) and fatal <= REPLAYABLE_CODES


def _sealed_for_replay(runs: RunStore, run_id: str, ready: Sequence[WorkRecord]) -> dict[int, str]:
    wanted = [r.seq for r in ready if r.route in DEAD_LETTER_ROUTES and replayable(r)]
    if not wanted:
        return {}
    pipe = runs.pipeline()
    sealed = runs.read_sealed(pipe, run_id, wanted)
    blobs = sealed(pipe.execute())
    return {seq: blob for seq, blob in zip(wanted, blobs, strict=True) if blob is not None}


def audit_events(record: WorkRecord, trace: str) -> Iterator[AuditEvent]:
    """The claim's trail as audit rows, ending with its ``recorded`` step."""
    matrix = None
    seq, claim_id = record.seq, record.claim_id
    for event in record.events:
        matrix = event.get("matrix", matrix)
        outcome, found = event.get("outcome"), event.get("codes")
        yield AuditEvent(
            seq,
            str(event["stage"]),
            claim_id,
            None if outcome is None else str(outcome),
            [str(c) for c in found] if found else [],
            event.get("attempt"),
            trace,
            at=datetime.fromtimestamp(float(event["at"]), UTC),
            detail={k: v for k, v in event.items() if k not in _EVENT_FIELDS},
        )
    yield AuditEvent(
        seq=record.seq,
        stage=AuditStage.RECORDED,
        claim_id=record.claim_id,
        outcome=record.status,
        codes=codes(record) + list(record.reject_codes),
        attempt=record.attempts,
        trace_id=trace,
        payload_hash=payload_hash(record),
        schema_version=SCHEMA_VERSION,
        matrix_version=matrix,
        detail={"route": record.route, "reason": record.reason},
    )


def dead_letter(record: WorkRecord, sealed: str | None) -> DeadLetter:
    """What a person needs to find and fix a dead-lettered claim (and a replay to resend it)."""
    first = record.issues[0] if record.issues else None
    keep = replayable(record)
    return DeadLetter(
        seq=record.seq,
        route=str(record.route),
        claim_id=record.claim_id,
        source=record.source,
        line=record.line,
        field=first.field if first else None,
        status=record.status,
        codes=codes(record) + list(record.reject_codes),
        reason=record.reason,
        record=_replay_record(record) if keep else None,
        sealed=sealed if keep else None,
    )


def _replay_record(record: WorkRecord) -> dict[str, Any]:
    return record.model_dump(
        mode="json", include={"source", "line", "fmt", "claim_id", "fields", "patient_token"}
    )


def payload_hash(record: WorkRecord) -> str:
    """SHA-256 of the claim as the fleet saw it (tokenized: no PHI goes in)."""
    body = json.dumps(
        {"claim": record.claim or record.fields, "patient": record.patient_token},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()
