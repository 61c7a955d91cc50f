"""intake: the first link. Reads, checks, tokenizes and seals a slice of the input.

A producer reading a large JSONL file does not parse it: it cuts the file at line
ends into slices of one batch each, seals each slice (AES-GCM under the vault key:
raw lines hold PHI) into Redis and sends the batch's chain. This link, in any cpu
worker, opens the slice and turns its lines into work records exactly as the
producer would (:class:`~rxfleet.links.ingest.Ingest`) and validates them
(:mod:`rxfleet.links.validate`), so one file enters the fleet as fast as there are
cpu processes.

What still needs input order is done in input order: the duplicate-id check and
the per-claim-id order of submissions are taken slice after slice of the pass
that shipped them (``RunStore.turn``); the parsing, tokenizing and sealing before
it run in parallel, and so does validation (each outcome goes on its record after
the duplicate-id check). Records are written, validated, and the slice dropped in
one script (``RunStore.admit``): a slice is admitted once, whatever runs it twice.
A batch with no slice waiting (the producer ingested it itself, or it was admitted
before) is validated from Redis (``validate_batch``: the records still waiting).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from rxfleet.claims.work import WorkRecord
from rxfleet.formats.jsonl import read_slice
from rxfleet.links.ingest import Ingest, mark_duplicates
from rxfleet.links.validate import Checks
from rxfleet.stores.order import ClaimOrder, entry_of
from rxfleet.stores.runs import RunStore

log = logging.getLogger("rxfleet.intake")
_TOLD: set[str] = set()  # the vault key ids this process said it lacks

#: How long an intake waits in process for the slice before its own (then it comes back
#: by countdown: the slice before may sit behind it in the queue).
TURN_WAIT_S = 2.0
TURN_POLL_S = 0.01


@dataclass(frozen=True)
class SliceHeader:
    """Where a slice's lines come from and which pass shipped it (the slice's first line
    of its sealed bytes, before the raw lines)."""

    source: str  # the input's path as the run names it (results say ``source:line``)
    first_line: int
    holder: str  # the producer's pass
    after: int | None  # the batch this pass shipped before (None: its first)
    phi_kid: str  # the producer's PHI key id: tokens and Idempotency-Keys must be its


def pack_slice(header: SliceHeader, data: bytes) -> bytes:
    return json.dumps(asdict(header), separators=(",", ":")).encode() + b"\n" + data


def unpack_slice(raw: bytes) -> tuple[SliceHeader, bytes]:
    head, _, data = raw.partition(b"\n")
    return SliceHeader(**json.loads(head)), data


def slice_context(run_id: str, first: int) -> str:
    """What a slice is sealed for: it opens only as this run's batch at ``first``."""
    return f"{run_id}:slice:{first}"


@dataclass
class IntakeReport:
    run_id: str
    first: int
    link: str = "intake"
    ingested: int = 0  # records written by this intake (0: nothing was waiting)
    quarantined: int = 0
    waiting: bool = False  # the slice before is not admitted yet: come back
    lacks_key: str | None = None  # a key of the slice this worker lacks (vault, or PHI)

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def intake_batch(
    runs: RunStore,
    ingest: Ingest,
    order: ClaimOrder | None,
    first: int,
    *,
    checks: Checks | None = None,
    turn_wait: float = TURN_WAIT_S,
) -> IntakeReport:
    """Ingest the slice shipped for the batch at ``first``, if one waits, and validate
    its records by ``checks`` (None: they are admitted waiting for validation)."""
    run_id = ingest.run_id
    report = IntakeReport(run_id, first)
    sealed = runs.shipped(run_id, first)
    if sealed is None:
        return report
    header, data = _open(ingest, sealed, first, report)
    if header is None:
        _tell_lacking(str(report.lacks_key))
        return report
    records = read_slice(header.source, header.first_line, data)
    items = [ingest(record, first + i) for i, record in enumerate(records)]
    works = [work for work, _ in items]
    checked = [checks.check(work) for work in works] if checks is not None else []
    if not _await_turn(runs, run_id, header, first, turn_wait):
        report.waiting = True
        return report
    mark_duplicates(runs, run_id, works)
    took = checks.settle(works, checked) if checks is not None else []
    enter_order(order, run_id, works)
    blobs = {work.seq: blob for work, blob in items if blob is not None}
    report.ingested = max(0, runs.admit(run_id, header.holder, first, works, blobs))
    if checks is not None and report.ingested:  # admitted here: counted once
        checks.observe(took)
    report.quarantined = sum(work.quarantined for work in works) if report.ingested else 0
    return report


def _open(
    ingest: Ingest, sealed: str, first: int, report: IntakeReport
) -> tuple[SliceHeader | None, bytes]:
    """The slice's header and lines; (None, b"") with ``report`` waiting when this
    worker lacks the vault key it was sealed under, or holds another PHI key than the
    producer's (its tokens and Idempotency-Keys would not be the run's)."""
    report.lacks_key = ingest.vault.lacks(sealed)
    if report.lacks_key is None:
        opened = ingest.vault.open_bytes(sealed, context=slice_context(ingest.run_id, first))
        header, data = unpack_slice(opened)
        if header.phi_kid == ingest.tokenizer.kid:
            return header, data
        report.lacks_key = f"PHI key id {header.phi_kid}"
    report.waiting = True
    return None, b""


def enter_order(order: ClaimOrder | None, run_id: str, works: Sequence[WorkRecord]) -> None:
    """The claims to be sent take their place in their claim ids' order (a reversal
    in this run or another waits there for the billing ahead of it)."""
    if order is not None:
        entries = [entry_of(run_id, w) for w in works if not w.quarantined]
        order.enter(run_id, [e for e in entries if e is not None])


def _tell_lacking(what: str) -> None:
    """Said once a key in this process: a producer was given a new vault key (or
    another PHI key) before the cpu workers; its slices wait, for this worker or another."""
    if what in _TOLD:
        return
    _TOLD.add(what)
    if what.startswith("PHI"):
        log.warning(
            "%s: the run's producer tokenizes under it and this worker holds another "
            "RXFLEET_PHI_KEY; its input slices wait. Give the cpu workers the producer's "
            "PHI key and restart them", what,
        )  # fmt: skip
    else:
        log.warning(
            "vault key id %s: this worker lacks it and cannot open the input slices sealed "
            "under it; they wait. Give the cpu workers that key (RXFLEET_VAULT_KEY, or "
            "RXFLEET_VAULT_KEYS_OLD) and restart them", what,
        )  # fmt: skip


def _await_turn(
    runs: RunStore, run_id: str, header: SliceHeader, first: int, seconds: float
) -> bool:
    deadline = time.monotonic() + seconds
    while not runs.turn(run_id, header.holder, header.after, first):
        if time.monotonic() >= deadline:
            return False
        time.sleep(TURN_POLL_S)
    return True
