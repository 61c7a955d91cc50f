"""The dead letters, from the system of record: look at them, and replay what a
replay can fix.

The record link writes a dead letter for every claim whose route needs a
person or another try (``DEAD_LETTER``, ``RETRY_LATER``, ``HOST_ERROR``,
``REVIEW_REQUIRED``). ``replay`` sends the replayable ones through a new run:
the fleet's own give-ups (retries exhausted against a gateway that could not be
reached, an aborted run) and quarantines whose only fatal code is
``MISSING_GPI_MAPPING`` (fixed by a crosswalk update). A payer's own reject
99 is not replayed. The claim keeps its claim id, so the gateway's idempotency
keeps it adjudicated once.

Both take a :class:`~rxfleet.stores.database.LetterFilter` (run, claim, code,
reason, combined) or a bare run id; :func:`preview` says what a replay with that
filter would send (``--dry-run``), and sends nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from config import Settings
from rxfleet.claims.audit import AuditStage
from rxfleet.claims.phi import VaultCipher
from rxfleet.claims.work import WorkRecord
from rxfleet.lifecycle import RunPlan, new_run_id
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.database import Database, LetterFilter
from rxfleet.stores.runs import RunStore

SendBatch = Callable[[str, int, int], object]
#: What a listing shows of a dead letter: where, what and why, never a value.
LISTED = ("run_id", "seq", "claim_id", "source", "line", "field", "status", "route", "codes",
          "reason", "created_at")  # fmt: skip


@dataclass
class ReplayStores:
    """What a replay touches: the runs, the system of record, the crosswalk cache."""

    runs: RunStore
    db: Database
    crosswalk: CrosswalkCache
    vault: VaultCipher
    settings: Settings


Which = LetterFilter | str | None


def listing(
    db: Database, which: Which, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of dead letters (newest first), only the listed fields; and how many in all."""
    rows, total = db.dead_letters(which, limit=limit, offset=offset)
    return [_listed(row) for row in rows], total


def first_quarantined(db: Database, run_id: str, limit: int = 10) -> list[dict[str, Any]]:
    """A run's first quarantined claims in input order, the listed fields."""
    return [_listed(row) for row in db.first_quarantined(run_id, limit)]


def _listed(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(row.get(k)) for k in LISTED}


def preview(db: Database, which: Which) -> tuple[list[dict[str, Any]], int]:
    """What a replay with ``which`` would send (listed fields, in replay order), and how
    many other letters match but cannot be replayed. Nothing is changed."""
    rows, others = _matching(db, which)
    return [_listed(row) for row in rows], others


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def replay(stores: ReplayStores, which: Which, send: SendBatch) -> tuple[str | None, int]:
    """Copy the replayable dead letters that ``which`` matches into a new run and send
    it; (new run id, claims)."""
    rows, _ = _matching(stores.db, which)
    if not rows:
        return None, 0
    plan = RunPlan(new_run_id(), stores.settings.batch_size)
    crosswalk = stores.crosswalk.load(stores.settings.crosswalk)
    stores.db.create_run(plan.run_id, inputs="dlq replay", options={"crosswalk": crosswalk})
    stores.runs.open(plan.run_id, {"crosswalk": crosswalk, "batch_size": str(plan.batch_size)})
    for first in range(0, len(rows), plan.batch_size):
        _enqueue(stores, plan.run_id, first, rows[first : first + plan.batch_size], send)
    stores.runs.set_meta(plan.run_id, total=len(rows))
    stores.db.set_run(plan.run_id, state="produced", total=len(rows), produced=len(rows))
    stores.db.mark_replayed([(r["run_id"], int(r["seq"])) for r in rows], plan.run_id)
    return plan.run_id, len(rows)


def _matching(db: Database, which: Which) -> tuple[list[dict[str, Any]], int]:
    """The replayable letters ``which`` matches, in (run, seq) order; and how many others."""
    rows: list[dict[str, Any]] = []
    offset = others = 0
    while True:
        page, total = db.dead_letters(which, limit=1000, offset=offset)
        keep = [r for r in page if r.get("record") is not None]
        rows, others = rows + keep, others + len(page) - len(keep)
        offset += len(page)
        if not page or offset >= total:
            return sorted(rows, key=lambda r: (str(r["run_id"]), int(r["seq"]))), others


def _enqueue(
    stores: ReplayStores, new_id: str, first: int, rows: Sequence[dict[str, Any]], send: SendBatch
) -> None:
    records, blobs = [], {}
    for offset, row in enumerate(rows):
        seq = first + offset
        records.append(_fresh(row, seq))
        if row.get("sealed"):
            phi = stores.vault.open(str(row["sealed"]), context=f"{row['run_id']}:{row['seq']}")
            blobs[seq] = stores.vault.seal(phi, context=f"{new_id}:{seq}")
    stores.runs.register_batch(new_id, first, len(rows))
    stores.runs.add(new_id, records, blobs)
    send(new_id, first, len(rows))


def _fresh(row: dict[str, Any], seq: int) -> WorkRecord:
    saved = row["record"] if isinstance(row["record"], dict) else json.loads(str(row["record"]))
    record = WorkRecord(seq=seq, **saved)
    record.trail(AuditStage.INGESTED, codes=[], replay_of=f"{row['run_id']}/{row['seq']}")
    return record
