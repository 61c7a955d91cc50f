"""Which claims of a window wait for an earlier submission of their claim id.

Only claims the order store flagged at ingestion (something of their claim id was
ahead of them then) are looked at: for each, the submissions ahead of it are read
from their runs' ledgers. One not yet answered (its record still before ``SENT``)
holds the claim back; one whose record is gone (recorded, or lost with its run)
is dropped from the order. So a reversal or rebill is sent only once the billing
it undoes has its answer, whichever run carries either (docs/protocol.md).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from rxfleet.claims.work import Stage, WorkRecord
from rxfleet.stores.order import ClaimOrder, Place, entry_of
from rxfleet.stores.runs import RunStore


def held_back(
    order: ClaimOrder, runs: RunStore, run_id: str, flagged: Sequence[WorkRecord]
) -> set[int]:
    """The seqs of ``flagged`` that must wait: something ahead of them is unanswered."""
    entries = [e for e in (entry_of(run_id, r) for r in flagged) if e is not None]
    if not entries:
        return set()
    ahead = order.ahead(entries)
    unanswered, gone = _states(runs, [p for places in ahead.values() for p in places])
    held: set[int] = set()
    for entry in entries:
        places = ahead[entry.seq]
        order.drop(entry.claim_id, [p for p in places if p in gone])
        if any(p in unanswered for p in places):
            held.add(entry.seq)
    return held


def _states(runs: RunStore, places: Sequence[Place]) -> tuple[set[Place], set[Place]]:
    """Of ``places``: those not yet answered, and those whose record is gone."""
    by_run: dict[str, list[Place]] = defaultdict(list)
    for place in places:
        by_run[place.run_id].append(place)
    unanswered: set[Place] = set()
    gone: set[Place] = set()
    for run_id, here in by_run.items():
        found = {r.seq: r for r in runs.load(run_id, sorted({p.seq for p in here}))}
        for place in here:
            record = found.get(place.seq)
            if record is None:
                gone.add(place)
            elif record.stage < Stage.SENT:
                unanswered.add(place)
    return unanswered, gone
