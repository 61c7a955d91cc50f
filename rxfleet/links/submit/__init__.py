"""submit: a batch's open claims to the gateway, a window of requests in flight at a time.

Throughput is in-flight ÷ latency: a round sends the open claims in windows of
the sender's share of the fleet's in-flight limit (``RXFLEET_SUBMIT_INFLIGHT`` to
begin with; found from the gateway's answers: ``rxfleet.stores.inflight``), all
through the context's ``Sender`` (in the fleet, one aiohttp event loop and session
per worker process, ``rxfleet.gateway.aio``; a window of one too). Redis is read once per
window (the fleet pause and both breakers, the abort flag, the claims' send
leases, their vault blobs, the route memos: ``plan``) and written once per
window (the ledger, the audit trail and the batch's heartbeat).

Every promise holds inside the window:

* each claim keeps its ``Idempotency-Key`` (its submission's key, made at
  ingestion: ``WorkRecord.key``) on every try;
* a claim is leased before it is sent: a second delivery of the batch (an early
  redelivery, a re-driven chain) cannot send it while the lease holds;
* a 401 invalidates exactly the token used, the fleet rotates once
  (single-flight) and only the refused claims are replayed with the new one;
* a 404 rejects ``04`` and the BIN/PCN is remembered at once; an unknown
  BIN/PCN is found out by one request at a time across the fleet;
* the first 429/503 with Retry-After stops new sends (the requests in flight
  finish and are recorded), then the whole fleet pauses until Retry-After; one
  without Retry-After shrinks the in-flight limit (the claim is sent again);
* every answer feeds the breakers (gateway health and authentication).

The whole retry policy of the link is here: a claim whose own tries are spent
is rejected 99 and the batch goes on; a window in which every request failed
ends the round with backoff (exponential, full jitter), and when rounds without
progress run out (the gateway is down) the open claims are rejected 99. Waits
longer than ``RXFLEET_COUNTDOWN_MAX`` are taken in hops, so the broker's
visibility timeout can stay short.

The modules: ``context`` (what the link works with), ``plan`` (a window's Redis
read and choice), ``send`` (the window through the sender), ``settle`` (outcomes
onto records), ``round`` (the loop).
"""

from __future__ import annotations

from rxfleet.claims.work import Stage
from rxfleet.links import open_records
from rxfleet.links.submit.context import (
    LocalPause,
    Retry,
    Sender,
    SubmitContext,
    SubmitReport,
    backoff,
)
from rxfleet.links.submit.round import Round

__all__ = [
    "LocalPause",
    "Retry",
    "Sender",
    "SubmitContext",
    "SubmitReport",
    "backoff",
    "submit_batch",
]


def submit_batch(
    ctx: SubmitContext, run_id: str, batch: range, *, failures: int = 0
) -> SubmitReport:
    """Send the batch's open claims; ``report.retry`` says when to come back for the rest.

    ``failures`` counts rounds that failed without progress. A deferral (fleet
    pause, open breaker, a route being found out, claims leased elsewhere, the
    round's time budget) is not a failure, and a round with progress starts the
    count again.
    """
    report = SubmitReport(run_id, "submit")
    todo = open_records(ctx.runs, run_id, batch, Stage.MAPPED, report)
    round_ = Round(ctx, run_id, batch, report, failures)
    round_.run(todo)
    if report.retry_in is not None:
        streak = failures if report.deferred else (1 if report.done else failures + 1)
        report.retry = Retry(min(report.retry_in, ctx.settings.countdown_max), streak)
    if ctx.metrics is not None:
        retried = (report.reason or "retry") if report.retry is not None else None
        ctx.metrics.add_round(round_.settler.requests, retried)
    return report
