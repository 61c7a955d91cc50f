"""The dead-letter stream: look at it, and replay what a replay can fix.

Entries are written by the record link, once per claim, for routes that need a
person or another try (``DEAD_LETTER``, ``RETRY_LATER``, ``HOST_ERROR``,
``REVIEW_REQUIRED``). ``replay`` sends the replayable ones through a new run:
transport failures (``RETRY_LATER``, ``HOST_ERROR``) and quarantines whose only
fatal code is ``MISSING_GPI_MAPPING`` (fixed by a crosswalk update). The claim
keeps its claim_id, so the gateway's idempotency keeps it adjudicated once.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from rich.console import Console
from rich.table import Table

from config import get_settings
from rxfleet.claims.rejects import Route
from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.phikeys import vault
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.deadletters import DeadLetters
from rxfleet.stores.runs import RunStore, new_run_id

REPLAYABLE_ROUTES = {Route.RETRY_LATER, Route.HOST_ERROR}
REPLAYABLE_CODES = {"MISSING_GPI_MAPPING"}


SendBatch = Callable[[str, int, int], object]


@dataclass
class ReplayStores:
    """What a replay touches: the runs, the dead letters and the crosswalk cache."""

    runs: RunStore
    dead_letters: DeadLetters
    crosswalk: CrosswalkCache


def show(dead_letters: DeadLetters, run_id: str | None, limit: int) -> int:
    """A table on a terminal; one JSON entry per line for a pipe or a file."""
    console = Console()
    chosen = list(islice(dead_letters.entries(run_id), limit))
    if not console.is_terminal:
        for _, entry in chosen:
            print(json.dumps(entry))
        return 0
    table = Table(show_edge=False)
    for column in ("run", "claim", "where", "route", "codes", "detail"):
        table.add_column(column)
    for _, entry in chosen:
        table.add_row(*_row(entry))
    console.print(table)
    return 0


def _row(entry: dict[str, Any]) -> tuple[str, ...]:
    issues = entry.get("issues") or []
    codes = [i["code"] for i in issues] + list(entry.get("reject_codes") or [])
    first = issues[0] if issues else None
    detail = f"field {first['field']}: {first['message']}" if first else ""
    where = f"{entry['source']}:{entry['line']}"
    return (entry["run_id"], str(entry["claim_id"]), where, entry["route"], ",".join(codes), detail)


def replayable(entry: dict[str, Any]) -> bool:
    if entry["route"] in REPLAYABLE_ROUTES:
        return True
    fatal = {i["code"] for i in entry.get("issues") or []} - {"OBSOLETE_NDC", "PRIOR_AUTH_FLAG"}
    return entry["route"] == Route.DEAD_LETTER and bool(fatal) and fatal <= REPLAYABLE_CODES


def replay(stores: ReplayStores, run_id: str | None, send: SendBatch) -> tuple[str | None, int]:
    """Copy replayable entries into a new run and send it; (new run id, claims)."""
    runs = stores.runs
    chosen = [(eid, e) for eid, e in stores.dead_letters.entries(run_id) if replayable(e)]
    if not chosen:
        return None, 0
    new_id = new_run_id()
    crosswalk = stores.crosswalk.load(get_settings().crosswalk)
    runs.create(new_id, {"inputs": "dlq replay", "state": "producing", "crosswalk": crosswalk})
    for seq, (_, entry) in enumerate(reversed(chosen)):
        _copy(runs, entry, new_id, seq)
    size = get_settings().batch_size
    for first in range(0, len(chosen), size):
        send(new_id, first, min(size, len(chosen) - first))
    runs.set_meta(new_id, total=len(chosen), state="produced")
    runs.expire(new_id)
    stores.dead_letters.remove([eid for eid, _ in chosen])
    return new_id, len(chosen)


def _copy(runs: RunStore, entry: dict[str, Any], new_id: str, seq: int) -> None:
    old_id, old_seq = entry["run_id"], int(entry["seq"])
    (record,) = runs.load(old_id, [old_seq])
    fresh = WorkRecord(
        seq=seq,
        source=record.source,
        line=record.line,
        fmt=record.fmt,
        claim_id=record.claim_id,
        fields=record.fields,
        patient_token=record.patient_token,
        stage=Stage.INGESTED,
    )
    sealed = runs.sealed_phi(old_id, old_seq)
    blobs: dict[int, str] = {}
    if sealed is not None:
        cipher = vault(get_settings())
        phi = cipher.open(sealed, context=f"{old_id}:{old_seq}")
        blobs[seq] = cipher.seal(phi, context=f"{new_id}:{seq}")
    runs.add(new_id, [fresh], blobs)


def replay_command(stores: ReplayStores, run_id: str | None, send: SendBatch) -> int:
    new_id, count = replay(stores, run_id, send)
    if new_id is None:
        print("nothing replayable in the dead-letter stream")
        return 0
    print(f"replaying {count} claims as run {new_id}; follow it with `rxfleet wait {new_id}`")
    return 0
