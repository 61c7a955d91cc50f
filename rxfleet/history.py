"""One claim's history across runs, from the system of record (``rxfleet claim``).

Every submission of a claim id (each row of the ``submissions`` table: a billing,
a correction, a reversal, a rebill, or the same claim sent again by a re-run or a
replay) with its answer, money, reason and audit stages, by the time it was
recorded. Nothing is read from Redis: what is in flight has no result yet and is
not shown. A submission whose row retention already deleted while its audit trail
remains is still listed, from its ``recorded`` audit event. No PHI: ids, keys (a
keyed digest), codes, amounts, tokens never leave here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rxfleet.claims.audit import AuditStage
from rxfleet.claims.text import shown
from rxfleet.stores.database import Database
from rxfleet.stores.pg import Row

#: A submission's fields, in the order ``--json`` and the TSV give them.
SUBMISSION_FIELDS = (
    "run_id", "seq", "run_created_at", "recorded_at", "source", "transaction_code", "kind",
    "status", "reject_codes", "reason", "route", "amount_paid", "patient_pay",
    "authorization_number", "attempts", "errors", "idempotency_key", "payload_hash",
)  # fmt: skip
#: What each audit stage of a submission shows.
STAGE_FIELDS = ("stage", "outcome", "codes", "attempt", "at")
#: The kind of a submission, by its transaction code (a ``B1`` is told apart below).
KIND_OF = {"B2": "reversal", "B3": "rebill"}
_EPOCH = datetime.min.replace(tzinfo=UTC)


def history(db: Database, claim_id: str) -> list[dict[str, Any]]:
    """Every submission of ``claim_id``, by ``recorded_at`` then run and seq, each with
    its ``stages``."""
    trails: dict[tuple[str, int], list[Row]] = defaultdict(list)
    for event in db.claim_audit(claim_id):
        trails[(str(event["run_id"]), int(event["seq"]))].append(event)
    found = [_of_result(row, trails.pop((str(row["run_id"]), int(row["seq"])), []))
             for row in db.claim_submissions(claim_id)]  # fmt: skip
    found += [_of_trail(run_id, seq, events) for (run_id, seq), events in trails.items()]
    found.sort(key=_when)
    _name_kinds(found)
    return [{k: _plain(s.get(k)) for k in SUBMISSION_FIELDS} | {"stages": s["stages"]}
            for s in found]  # fmt: skip


def _of_result(row: Row, events: Sequence[Row]) -> dict[str, Any]:
    submission = dict(row)
    submission["payload_hash"] = _recorded(events).get("payload_hash")
    submission["stages"] = [_stage(e) for e in events]
    return submission


def _of_trail(run_id: str, seq: int, events: Sequence[Row]) -> dict[str, Any]:
    """A submission known only by its audit trail (its result row pruned)."""
    recorded = _recorded(events)
    detail = recorded.get("detail") or {}
    return {
        "run_id": run_id,
        "seq": seq,
        "recorded_at": recorded.get("at"),
        "status": recorded.get("outcome"),
        "route": detail.get("route"),
        "reason": detail.get("reason"),
        "attempts": recorded.get("attempt"),
        "payload_hash": recorded.get("payload_hash"),
        "stages": [_stage(e) for e in events],
    }


def _recorded(events: Sequence[Row]) -> Row:
    return next((e for e in reversed(events) if e["stage"] == AuditStage.RECORDED), {})


def _stage(event: Row) -> dict[str, Any]:
    return {k: _plain(event.get(k)) for k in STAGE_FIELDS}


def _when(submission: dict[str, Any]) -> tuple[datetime, str, int]:
    at = submission.get("recorded_at") or _EPOCH
    return at, str(submission["run_id"]), int(submission["seq"])


def _name_kinds(submissions: Sequence[dict[str, Any]]) -> None:
    """``billing`` (the first), ``correction`` (another submission than the billing before
    it: a new Idempotency-Key), ``resend`` (the same key again: a re-run or a replay),
    ``reversal``, ``rebill``."""
    last: dict[str, Any] | None = None
    for submission in submissions:
        code = submission.get("transaction_code") or "B1"
        if code in KIND_OF:
            submission["kind"] = KIND_OF[code]
        elif last is None:
            submission["kind"] = "billing"
        else:
            submission["kind"] = "resend" if _same(submission, last) else "correction"
        last = submission if code == "B1" else last
        submission["transaction_code"] = code


def _same(one: dict[str, Any], other: dict[str, Any]) -> bool:
    """The same submission: the same Idempotency-Key; where either has none (recorded
    before keys, or known by its trail only), the same tokenized content."""
    if one.get("idempotency_key") and other.get("idempotency_key"):
        return bool(one["idempotency_key"] == other["idempotency_key"])
    return bool(one.get("payload_hash") == other.get("payload_hash"))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):  # a numeric column: money, as a JSON number
        return float(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


# -- showing it --------------------------------------------------------------------------

_COLUMNS = ("#", "run", "recorded", "source", "tx", "kind", "status", "codes", "reason",
            "paid", "patient pay", "authorization", "stages")  # fmt: skip


def table(console: Console, claim_id: str, submissions: Sequence[dict[str, Any]]) -> None:
    """The submissions as a table, one row each (a terminal)."""
    view = Table(title=Text(f"claim {shown(claim_id)}"), title_justify="left", show_edge=False)
    for column in _COLUMNS:
        view.add_column(column, overflow="fold", no_wrap=column != "stages")
    for number, row in enumerate(_cells(submissions), start=1):
        view.add_row(Text(str(number)), *(Text(cell) for cell in row))
    console.print(view)


def tsv(submissions: Sequence[dict[str, Any]]) -> Iterator[str]:
    """The submissions for a pipe: a header line, then one tab-separated line each."""
    yield "\t".join(c.replace(" ", "_") for c in _COLUMNS[1:])
    for row in _cells(submissions):
        yield "\t".join(row)


def _cells(submissions: Sequence[dict[str, Any]]) -> Iterator[list[str]]:
    for s in submissions:
        where = s["source"] or ""
        row = [s["run_id"], s["recorded_at"], where, s["transaction_code"], s["kind"],
               s["status"], " ".join(s["reject_codes"] or []), s["reason"], s["amount_paid"],
               s["patient_pay"], s["authorization_number"], stages_text(s["stages"])]  # fmt: skip
        yield [shown(value) for value in row]


def stages_text(stages: Sequence[dict[str, Any]]) -> str:
    """``ingested > validated > ... > recorded:PAID``: each stage, with its outcome."""
    return " > ".join(
        str(e["stage"]) + (f":{e['outcome']}" if e.get("outcome") else "") for e in stages
    )
