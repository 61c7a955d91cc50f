"""The sweeper's eye: batches of active runs that made no progress for too long, and
whether a stalled batch is driven again or has been driven often enough.

A batch stalls when its chain was lost (a Redis that kept no persistence, a worker
that died between links) or when a link fails on it every time (``LinkFailed``: a
claim's content that the code cannot handle). The first is cured by driving the
batch again; the second would loop at the sweeper's pace for ever. So a batch is
re-driven at most ``RXFLEET_MAX_DELIVERIES`` times; after that its open claims end
in the dead letters with the reason ``POISON``, like a message that kills its worker
(``rxfleet.links.poison``), and the run finishes.
"""

from __future__ import annotations

from collections.abc import Callable

from rxfleet.claims.rejects import RejectMatrix
from rxfleet.links import LinkReport
from rxfleet.links.poison import dead_letter_batch
from rxfleet.stores import clock
from rxfleet.stores.database import Database
from rxfleet.stores.runs import RunStore

SWEEP = "sweep"  # the link name a batch the sweeper gave up on is recorded under
Send = Callable[[str, int, int], object]


def stalled_batches(runs: RunStore, stall_seconds: float) -> list[tuple[str, int, int]]:
    """(run id, first seq, count) of every open batch idle for ``stall_seconds``."""
    now = clock.now()
    stalled = []
    for run_id in runs.active():
        for first, (count, last) in sorted(runs.batches(run_id).items()):
            if now - last > stall_seconds:
                stalled.append((run_id, first, count))
    return stalled


def redrive_or_give_up(
    runs: RunStore, db: Database, stalled: tuple[str, int, int], most: int, send: Send,
    rejects: RejectMatrix | None = None,
) -> LinkReport | None:  # fmt: skip
    """Drive a stalled batch again with ``send``; past ``most`` re-drives, end its open
    claims as poison (the answered ones routed by ``rejects`` first) and record the
    batch (the report), so its run can finish. A batch whose slice waits behind an
    earlier slice still waiting is held by input order, not failing: it is driven
    again, never given up (the first slice in the way is, when it fails)."""
    run_id, first, count = stalled
    if runs.redriven(run_id, first) > most and not runs.waits_behind(run_id, first):
        batch = range(first, first + count)
        return dead_letter_batch(runs, db, run_id, batch, SWEEP, f"{run_id}/{first}", rejects)
    runs.register_batch(run_id, first, count)  # its deadline starts again
    send(run_id, first, count)
    return None
