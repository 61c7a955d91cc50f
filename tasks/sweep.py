"""Beat: re-drive any batch with no progress past the deadline (a chain message lost
with a Redis that kept no persistence, a worker that died between links); a batch
re-driven more than ``RXFLEET_MAX_DELIVERIES`` times ends in the dead letters (a link
that fails on it every time). Idempotent: the links skip what is finished, and the
submit leases keep a claim sent once."""

from __future__ import annotations

from config import get_settings
from rxfleet import context
from rxfleet.links.sweep import redrive_or_give_up, stalled_batches
from workers.app import app
from workers.pipeline import send_batch


@app.task(ignore_result=True, send_events=False)
def sweep() -> int:
    runs, settings = context.runs(), get_settings()
    stalled = stalled_batches(runs, settings.stall_seconds)
    rejects = context.rejects()
    for batch in stalled:
        redrive_or_give_up(runs, context.database(), batch, settings.max_deliveries, send_batch,
                           rejects)  # fmt: skip
    return len(stalled)
