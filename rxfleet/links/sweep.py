"""The sweeper's eye: batches of active runs that made no progress for too long."""

from __future__ import annotations

import time

from rxfleet.stores.runs import RunStore


def stalled_batches(runs: RunStore, stall_seconds: float) -> list[tuple[str, int, int]]:
    """(run id, first seq, count) of every open batch idle for ``stall_seconds``."""
    now = time.time()
    stalled = []
    for run_id in runs.active():
        for first, (count, last) in sorted(runs.batches(run_id).items()):
            if now - last > stall_seconds:
                stalled.append((run_id, first, count))
    return stalled
