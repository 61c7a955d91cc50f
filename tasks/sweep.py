"""Beat: re-drive any batch with no progress past the deadline (a chain message lost
with a Redis that kept no persistence, a worker that died between links). Idempotent:
the links skip what is finished, and the submit leases keep a claim sent once."""

from __future__ import annotations

from config import get_settings
from rxfleet import context
from rxfleet.links.sweep import stalled_batches
from workers.app import app
from workers.pipeline import send_batch


@app.task(ignore_result=True)
def sweep() -> int:
    runs, settings = context.runs(), get_settings()
    stalled = stalled_batches(runs, settings.stall_seconds)
    for run_id, first, count in stalled:
        runs.register_batch(run_id, first, count)  # its deadline starts again
        send_batch(run_id, first, count)
    return len(stalled)
