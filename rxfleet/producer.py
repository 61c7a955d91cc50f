"""The producer: read inputs as a stream, split PHI off, cut batches, send chains.

PHI never travels: each record's PHI fields are checked, sealed into the vault
(AES-GCM) and replaced by a keyed token before the record is written to Redis
or any message is sent. Batches are cut as the input streams by, so memory
stays flat whatever the size of the file, and the producer waits for room when
the run already holds ``RXFLEET_MAX_INFLIGHT`` claims in flight (backpressure:
Redis stays the size of that window, and the first results arrive while the
file is still being read).

A run is produced by one producer at a time (a lease in Redis, renewed every
batch); a second producer of the same run follows the first and takes the run
over when the first's lease runs out (``take_run``). The producer checkpoints
how far it got in the database; a producer that picks a run up again (after
a crash, or after Redis lost its data) re-reads the input and enqueues exactly
the claims that are neither recorded nor in flight, under the same sequence
numbers and claim ids: nothing is enqueued twice, every Idempotency-Key is the
same.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice

from rxfleet.claims.work import WorkRecord
from rxfleet.errors import InfrastructureError, InputError
from rxfleet.formats import Format, detect_format, reader_for
from rxfleet.formats.base import Record
from rxfleet.formats.jsonl import jsonl_slices
from rxfleet.formats.payer_sheet import PayerSheet
from rxfleet.formats.x12 import Routes
from rxfleet.lifecycle import RunPlan, Say, finish_if_complete
from rxfleet.links.ingest import Ingest, mark_duplicates
from rxfleet.links.intake import SliceHeader, enter_order, pack_slice, slice_context
from rxfleet.stores.database import Database
from rxfleet.stores.order import ClaimOrder
from rxfleet.stores.runs import RunStore

SendBatch = Callable[[str, int, int], object]


@dataclass
class ProduceResult:
    run_id: str
    total: int = 0
    batches: int = 0
    enqueued: int = 0  # claims written to Redis by this producer (fewer on a resume)
    cut_short: str | None = None  # why the input stopped being readable, if it did


@dataclass
class Producer:
    """Streams inputs into one run: batches, backpressure, checkpoints, resume."""

    runs: RunStore
    db: Database
    ingest: Ingest
    send: SendBatch
    payer_routes: Routes
    payer_sheet: PayerSheet
    batch_size: int
    max_inflight: int
    holder: str  # this producer's lease on the run
    lease: float = 15.0
    resume_from: int | None = None  # the checkpoint of a run picked up again
    on_wait: Callable[[int], None] = lambda in_flight: None
    order: ClaimOrder | None = None  # submissions of one claim id go out in input order
    slices: bool = False  # a first pass over one JSONL file ships slices to the intake link

    @property
    def run_id(self) -> str:
        return self.ingest.run_id

    def produce(self, inputs: Sequence[str]) -> ProduceResult:
        """Every claim of ``inputs`` into the run, one chain per batch, in input order."""
        result = ProduceResult(self.run_id)
        self.runs.start_pass(self.run_id, self.holder)
        try:
            if self._sliceable(inputs):
                self._ship(inputs[0], result)
            else:
                for first, batch in _batches(
                    _records(inputs, self.payer_routes, self.payer_sheet), self.batch_size
                ):
                    self._batch(first, batch, result)
        except InputError as exc:
            if result.total == 0:
                raise
            result.cut_short = str(exc)
        self._produced(result)
        return result

    def _sliceable(self, inputs: Sequence[str]) -> bool:
        """Slices: on a first pass over a single JSONL input (a resume, and every other
        format, is read here, record by record)."""
        return (
            self.slices
            and self.resume_from is None
            and len(inputs) == 1
            and detect_format(inputs[0]) is Format.JSONL
        )

    def _ship(self, path: str, result: ProduceResult) -> None:
        """Cut ``path`` into slices of a batch each, unparsed; seal and ship each to the
        intake link with its chain (backpressure, lease and checkpoint as for records)."""
        after = None
        for piece in jsonl_slices(path, self.batch_size):
            first = result.total
            self._check_run()
            self._wait_for_room()
            self.runs.register_batch(self.run_id, first, piece.count)
            header = SliceHeader(
                path, piece.first_line, self.holder, after, self.ingest.tokenizer.kid
            )
            sealed = self.ingest.vault.seal_bytes(
                pack_slice(header, piece.data), context=slice_context(self.run_id, first)
            )
            self.runs.ship(self.run_id, first, piece.count, sealed)
            self.send(self.run_id, first, piece.count)
            after = first
            result.enqueued += piece.count
            self._produced_batch(result, first + piece.count)

    def _check_run(self) -> None:
        """Before a batch: the lease is still ours and the run not aborted."""
        self._hold_lease()
        if self.runs.aborted(self.run_id):
            raise InputError(self.run_id, "the run was aborted")

    def _produced_batch(self, result: ProduceResult, total: int) -> None:
        result.batches += 1
        result.total = total
        self.db.set_run(self.run_id, produced=result.total)

    def _batch(self, first: int, batch: list[Tagged], result: ProduceResult) -> None:
        self._check_run()
        items = [self.ingest(record, first + i, fmt) for i, (fmt, record) in enumerate(batch)]
        mark_duplicates(self.runs, self.run_id, [work for work, _ in items])
        # this pass has seen the batch's claim ids: an earlier pass's slice of it may go
        # in now (before waiting for room, which that slice may be holding)
        self.runs.passed(self.run_id, self.holder, first)
        todo = self._missing(first, items)
        if todo or self._boundary(first):
            self._wait_for_room()
            self.runs.register_batch(self.run_id, first, len(batch))
            works, resuming = [w for w, _ in todo], self.resume_from is not None
            enter_order(self.order, self.run_id, works)
            result.enqueued += self.runs.add(
                self.run_id, works, _blobs(todo), only_missing=resuming
            )
            self.send(self.run_id, first, len(batch))
        self._produced_batch(result, first + len(batch))

    def _missing(
        self, first: int, items: list[tuple[WorkRecord, str | None]]
    ) -> list[tuple[WorkRecord, str | None]]:
        """What of the batch is neither recorded nor in flight (all of it on a first pass)."""
        if self.resume_from is None:
            return items
        seqs = [work.seq for work, _ in items]
        recorded = self.db.recorded(self.run_id, first, first + len(items))
        present = self.runs.existing(self.run_id, seqs)
        return [(w, s) for w, s in items if w.seq not in recorded and w.seq not in present]

    def _boundary(self, first: int) -> bool:
        """A batch at or past the checkpoint may have lost its chain with its producer."""
        return self.resume_from is not None and first + self.batch_size > self.resume_from

    def _wait_for_room(self) -> None:
        while (in_flight := self.runs.in_flight(self.run_id)) >= self.max_inflight:
            self.on_wait(in_flight)
            self._hold_lease()
            time.sleep(0.2)

    def _hold_lease(self) -> None:
        if not self.runs.claim_producer(self.run_id, self.holder, self.lease):
            raise InfrastructureError(f"run {self.run_id}: another producer took the run over")

    def _produced(self, result: ProduceResult) -> None:
        self.runs.set_meta(self.run_id, total=result.total)
        self.db.set_run(
            self.run_id,
            state="produced",
            total=result.total,
            produced=result.total,
            note=f"cut short: {result.cut_short}" if result.cut_short else None,
        )
        self.runs.release_producer(self.run_id, self.holder)
        finish_if_complete(self.runs, self.db, self.run_id, self.runs.done(self.run_id))


def producer_holder() -> str:
    """A name for this producer's lease on a run, unique to this process and moment."""
    return f"{socket.gethostname()}:{os.getpid()}:{time.monotonic_ns()}"


def take_run(
    runs: RunStore, db: Database, plan: RunPlan, holder: str, lease: float, say: Say
) -> RunPlan | None:
    """The plan to produce under ``holder``'s lease on the run, or None: another producer
    held it and produced the whole input (the caller follows the run). While the other
    holds the lease this waits; when its lease runs out (it died) this takes the run
    over from the other's checkpoint."""
    if runs.claim_producer(plan.run_id, holder, lease):
        return plan
    say(f"another producer is enqueueing run {plan.run_id}: following it")
    produced = _await_producer(runs, db, plan.run_id, holder, lease)
    if produced is None:
        return None
    say(f"the other producer of run {plan.run_id} stopped at claim {produced}: taking over")
    return dataclasses.replace(plan, resumed=True, produced=produced)


def _await_producer(
    runs: RunStore, db: Database, run_id: str, holder: str, lease: float
) -> int | None:
    """Wait while another producer holds the run: None once it has produced the whole
    input; else (its lease ran out: it died) take the run over, and say how far it got."""
    while True:
        time.sleep(0.5)
        if not runs.claim_producer(run_id, holder, lease):
            continue
        row = db.get_run(run_id)
        if row is None or row["state"] != "producing":
            runs.release_producer(run_id, holder)
            return None
        return int(row["produced"] or 0)


def input_records(
    inputs: Iterable[str], payer_routes: Routes, payer_sheet: PayerSheet
) -> Iterator[tuple[str, Record]]:
    """Every record of ``inputs`` in order, with its format's name (a dry run reads these)."""
    return _records(inputs, payer_routes, payer_sheet)


def _records(
    inputs: Iterable[str], payer_routes: Routes, payer_sheet: PayerSheet
) -> Iterator[tuple[str, Record]]:
    for path in inputs:
        fmt = detect_format(path)
        for record in reader_for(fmt, payer_routes, payer_sheet)(path):
            yield fmt.value, record


Tagged = tuple[str, Record]


def _batches(records: Iterator[Tagged], size: int) -> Iterator[tuple[int, list[Tagged]]]:
    first = 0
    while batch := list(islice(records, size)):
        yield first, batch
        first += len(batch)


def _blobs(items: list[tuple[WorkRecord, str | None]]) -> dict[int, str]:
    return {work.seq: blob for work, blob in items if blob is not None}
