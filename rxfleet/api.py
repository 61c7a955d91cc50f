"""The public Python API: enqueue claims into a running fleet and follow them.

It works against a configured fleet (``RXFLEET_REDIS_URL`` and
``RXFLEET_DATABASE_URL``, the same settings as the workers, PHI keys included:
the producer seals PHI here, before anything leaves the process)::

    from rxfleet import api

    run = api.enqueue(["claims.jsonl"])           # or api.enqueue_claims(dicts)
    run.wait(on_progress=lambda done, total: print(done, total))
    for row in run.results():                       # input order, from PostgreSQL
        print(row["claim_id"], row["status"], row["reject_codes"])

``enqueue`` returns once every claim is in the fleet (it waits for room when
the run already holds ``RXFLEET_MAX_INFLIGHT`` claims). Errors are those of
``rxfleet.errors``: ``InputError`` (unreadable input, nothing enqueued),
``ConfigError`` (settings, unknown run), ``RunTimeout`` (``wait`` ran out of time).
The ``rxfleet`` command is built on these functions (docs/cli.md).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from config import get_settings
from config.processes import secrets_of
from rxfleet import context, lifecycle
from rxfleet.claims.crosswalk import CrosswalkEntry, read_crosswalk
from rxfleet.claims.phi import PhiTokenizer, VaultCipher
from rxfleet.claims.plans import load_plan_limits
from rxfleet.claims.validation import Issue
from rxfleet.claims.work import WorkRecord
from rxfleet.errors import ConfigError, RunTimeout
from rxfleet.formats import preflight as preflight_file
from rxfleet.formats.payer_sheet import load_payer_sheet
from rxfleet.formats.x12 import load_payer_routes
from rxfleet.gateway.portal import PortalClient
from rxfleet.guards import check_fleet
from rxfleet.lifecycle import Progress, RunPlan, Say, Waiter
from rxfleet.links import codes
from rxfleet.links.crosswalk import map_record
from rxfleet.links.ingest import Ingest
from rxfleet.links.validate import validate_record
from rxfleet.metrics import Snapshot, Sources, settings_queues, snapshot
from rxfleet.phikeys import require_keys, tokenizer, vault
from rxfleet.producer import (
    Producer,
    ProduceResult,
    input_records,
    producer_holder,
    take_run,
)
from rxfleet.stores.broker import broker_depths
from rxfleet.stores.connection import get_redis
from rxfleet.stores.database import Database
from rxfleet.stores.pause import Hold
from rxfleet.stores.portal import PortalStore
from rxfleet.sync import Sync, SyncParts, check_portal
from workers.pipeline import send_batch

__all__ = [
    "DryRun",
    "Progress",
    "Run",
    "RunInfo",
    "abort",
    "dry_run",
    "enqueue",
    "enqueue_claims",
    "resume",
    "run",
    "runs",
    "stats",
]

log = logging.getLogger("rxfleet.api")
OnProgress = Callable[[int, "int | None"], None]
PathLike = str | os.PathLike[str]


def _quiet(line: str) -> None:
    log.info("%s", line)


# -- the handle ---------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A run of the fleet, by its id. Cheap: it holds nothing but the id."""

    id: str

    def progress(self) -> Progress:
        """Claims recorded so far and the total (``None`` while its producer still reads)."""
        _fleet()
        return lifecycle.progress(context.runs(), context.database(), self.id)

    def wait(
        self,
        timeout: float | None = None,
        on_progress: OnProgress | None = None,
        *,
        poll: float = 0.1,
    ) -> Progress:
        """Block until every claim is recorded; ``on_progress(done, total)`` at each change.

        ``timeout`` in seconds (``None``: no limit). Rides through a Redis outage of
        up to ``RXFLEET_REDIS_OUTAGE`` seconds. Raises ``RunTimeout`` when time runs out.
        """
        _fleet()
        seen: list[tuple[int, int | None]] = []

        def tick(done: int, total: int | None) -> None:
            if on_progress is not None and (not seen or seen[-1] != (done, total)):
                seen.append((done, total))
                on_progress(done, total)

        waiter = Waiter(self.progress, _quiet, outage=get_settings().redis_outage, poll=poll)
        final = waiter.wait(math.inf if timeout is None else timeout, tick)
        if not final.finished:
            raise RunTimeout(
                f"run {self.id}: {final.done} of {final.total or '?'} claims terminal at timeout"
            )
        return final

    def results(self) -> Iterator[dict[str, Any]]:
        """The run's results in input order, streamed from the database (constant memory).

        Each: ``seq`` and the result fields of docs/results.md (``claim_id, status,
        severity, errors, ndc11, gpi, reject_codes, route, patient_token, attempts,
        transaction_code, reason, amount_paid, patient_pay, authorization_number,
        source``); amounts are ``Decimal`` to the cent (``json.dumps(row,
        default=float)`` writes them as numbers). Only recorded claims appear: call
        after ``wait`` for all of them.
        """
        _fleet()
        for row in context.database().results(self.id):
            yield dict(row)

    def counts(self) -> dict[str, int]:
        """Recorded claims per status."""
        _fleet()
        return context.database().counts(self.id)

    def abort(self) -> None:
        """Stop the run: see ``abort``."""
        abort(self.id)


@dataclass(frozen=True)
class RunInfo:
    """One row of ``runs()``."""

    run_id: str
    inputs: list[str]
    state: str
    note: str | None
    total: int | None
    recorded: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO-8601 strings."""
        out = dict(self.__dict__)
        for key in ("created_at", "updated_at", "finished_at"):
            value = out[key]
            out[key] = value.isoformat(timespec="seconds") if value is not None else None
        return out


# -- the functions --------------------------------------------------------------------


def enqueue(
    inputs: PathLike | Sequence[PathLike],
    *,
    batch_size: int | None = None,
    new: bool = False,
    say: Say | None = None,
) -> Run:
    """Enqueue one input file or several (one run, in order) and return its handle.

    Formats: JSON Lines, CSV, Parquet, NCPDP D.0, X12 837 (docs/formats.md). An
    unreadable file raises ``InputError`` before anything is enqueued. The same
    input while its run is unfinished picks that run up (``new=True``: a fresh run).
    """
    _fleet(producer=True)
    paths = _paths(inputs)
    check_inputs(paths)
    plan = open_plan(paths, batch_size_of(batch_size), new=new, say=say or _quiet)
    produce(plan, paths, say=say or _quiet)
    return Run(plan.run_id)


def enqueue_claims(
    claims: Iterable[Mapping[str, Any]],
    *,
    batch_size: int | None = None,
    new: bool = False,
    tmp_dir: PathLike | None = None,
    say: Say | None = None,
) -> Run:
    """Enqueue claim dicts (canonical field names, docs/formats.md) as one run.

    They are written to a temporary JSON Lines file (mode 0600, in ``tmp_dir`` or
    the system's) and produced like a file: PHI is split off and sealed by the
    same producer. The file is removed before this returns, whatever happens, so
    such a run cannot be ``resume``d after its producer died: abort it and
    enqueue again. Dates and decimals are written as ISO text and strings.
    """
    _fleet(producer=True)
    handle, name = tempfile.mkstemp(prefix="rxfleet-claims-", suffix=".jsonl", dir=tmp_dir)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            for claim in claims:
                out.write(json.dumps(dict(claim), default=_json_value) + "\n")
        return enqueue(name, batch_size=batch_size, new=new, say=say)
    finally:
        Path(name).unlink(missing_ok=True)


def run(run_id: str) -> Run:
    """The handle of an existing run (``ConfigError`` when the database has no such run)."""
    _fleet()
    if context.database().get_run(run_id) is None:
        raise ConfigError(f"no run {run_id} in the database")
    return Run(run_id)


def runs(limit: int = 20) -> list[RunInfo]:
    """The runs, newest first."""
    _fleet()
    db = context.database()
    return [
        RunInfo(
            run_id=str(row["run_id"]),
            inputs=[p for p in str(row["inputs"]).split("\n") if p],
            state=str(row["state"]),
            note=row.get("note"),
            total=row["total"],
            recorded=db.result_count(str(row["run_id"])),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            finished_at=row.get("finished_at"),
        )
        for row in db.list_runs(limit)
    ]


def resume(run_id: str, *, say: Say | None = None) -> Run:
    """Finish a run whose producer or chains were lost: re-read its input and enqueue
    exactly the claims neither recorded nor in flight (same ids: nothing twice)."""
    _fleet(producer=True)
    settings = get_settings()
    require_keys(settings)
    plan, inputs = lifecycle.reopen(context.runs(), context.database(), context.crosswalk(),
                                    settings, run_id)  # fmt: skip
    check_inputs(inputs)
    (say or _quiet)(f"picking up run {plan.run_id}")
    produce(plan, inputs, say=say or _quiet)
    return Run(plan.run_id)


def abort(run_id: str) -> bool:
    """Stop a run: its producer stops, claims not yet sent end ``99`` (reason ``ABORTED``).
    False when it had already finished; ``ConfigError`` when there is no such run."""
    _fleet()
    return lifecycle.abort(context.runs(), context.database(), run_id)


def pause(seconds: float | None = None) -> Hold:
    """Hold every submit worker back (``seconds``; None: until ``unpause``). Requests in
    flight finish; nothing is sent from about a second on. Replaces an earlier pause."""
    get_settings().redis_url_or_raise()
    return context.pause().hold(seconds)


def unpause() -> Hold | None:
    """End the operator's pause (a pause the gateway asked for runs its course); what it was."""
    get_settings().redis_url_or_raise()
    return context.pause().release()


def stats(run_id: str | None = None) -> dict[str, Any]:
    """The fleet's counters and live gauges (what ``rxfleet metrics`` exports); with
    ``run_id``, that run's counts from the database (status x route, reject codes) too."""
    _fleet()
    out = fleet_snapshot().as_dict()
    if run_id is not None:
        db = context.database()
        if db.get_run(run_id) is None:
            raise ConfigError(f"no run {run_id} in the database")
        out["run"] = {"run_id": run_id, **db.tallies(run_id)}
    return out


@dataclass
class DryRun:
    """What a run of ``inputs`` would quarantine, found without Redis, database or gateway."""

    total: int = 0
    quarantined: int = 0
    warned: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    first: list[dict[str, Any]] = field(default_factory=list)  # the first quarantined

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "would_quarantine": self.quarantined,
            "would_send": self.total - self.quarantined,
            "warned": self.warned,
            "codes": dict(self.codes.most_common()),
            "first_quarantined": self.first,
        }


def dry_run(inputs: PathLike | Sequence[PathLike], *, keep: int = 10) -> DryRun:
    """Read and validate ``inputs`` as a run would (schema, NDC, crosswalk, duplicate
    claim ids): nothing is enqueued or sent, no fleet is needed. ``InputError`` when
    an input cannot be read at all; ``keep``: how many quarantined claims to list."""
    settings = get_settings()
    paths = _paths(inputs)
    check_inputs(paths)
    crosswalk = {entry.ndc11: entry for entry in read_crosswalk(settings.crosswalk)}
    ingest = Ingest("dry-run", PhiTokenizer(os.urandom(32)), VaultCipher(os.urandom(32)))
    seen: dict[str, int] = {}
    out = DryRun()
    for seq, (fmt, record) in enumerate(
        input_records(
            paths, load_payer_routes(settings.payer_routes), load_payer_sheet(settings.payer_sheet)
        )
    ):
        work, _ = ingest(record, seq, fmt)
        _check(work, crosswalk, seen)
        out.total += 1
        out.codes.update(codes(work) if work.quarantined else ())
        out.warned += bool(work.issues) and not work.quarantined
        if work.quarantined:
            out.quarantined += 1
            if len(out.first) < keep:
                out.first.append(_where(work))
    return out


def _check(work: WorkRecord, crosswalk: Mapping[str, CrosswalkEntry], seen: dict[str, int]) -> None:
    key = work.duplicate_id
    duplicate = key is not None and seen.setdefault(key, work.seq) != work.seq
    if duplicate and not work.quarantined:
        work.add_issues([Issue.of("DUPLICATE_CLAIM_ID")])
        work.quarantine()
    if not work.quarantined:
        validate_record(work, limits=load_plan_limits(get_settings().plan_limits))
    if not work.quarantined:
        map_record(work, crosswalk.get(work.ndc11 or ""))


def _where(work: WorkRecord) -> dict[str, Any]:
    first = work.issues[0] if work.issues else None
    return {
        "source": work.source,
        "line": work.line,
        "claim_id": work.claim_id,
        "field": first.field if first else None,
        "codes": codes(work),
    }


# -- the parts the CLI shares ------------------------------------------------------------


def fleet_snapshot() -> Snapshot:
    """Counters and gauges from Redis, read now."""
    return snapshot(metric_sources())


def metric_sources() -> Sources:
    settings = get_settings()
    queues = settings_queues(settings)
    broker_url = settings.broker_url or settings.redis_url or ""
    return Sources(
        metrics=context.metrics(),
        runs=context.runs(),
        tokens=context.token_info(),
        pause=context.pause(),
        breakers=[context.health_breaker(), context.auth_breaker()],
        queues=queues,
        depths=broker_depths(broker_url, queues, get_redis),
        roll=context.workers(),
        letters=context.database().waiting_letters if settings.database_url else None,
        portals=PortalStore(get_redis(), settings.key_prefix),
        formulary=context.formulary(),
        rate=context.gateway_rate,
        inflight=context.gateway_inflight,
    )


def batch_size_of(value: int | None) -> int:
    size = value or get_settings().batch_size
    if not 1 <= size <= 10_000:
        raise ConfigError("--batch-size must be 1 to 10000")
    return size


def check_inputs(inputs: Sequence[str]) -> None:
    """Raise ``InputError`` before anything starts when an input (or the payer
    sheet the NCPDP inputs are read with) cannot be read."""
    settings = get_settings()
    routes = load_payer_routes(settings.payer_routes)
    load_payer_sheet(settings.payer_sheet)
    for path in inputs:
        preflight_file(path, routes)


def open_plan(inputs: Sequence[str], batch_size: int, *, new: bool, say: Say) -> RunPlan:
    """Create the run (or pick up the unfinished run of the same input)."""
    settings = get_settings()
    require_keys(settings)
    plan = lifecycle.open_run(context.runs(), context.database(), context.crosswalk(), settings,
                              inputs, batch_size, new=new)  # fmt: skip
    verb = "picking up run" if plan.resumed else "run"
    say(f"{verb} {plan.run_id}")  # before the first claim is read
    return plan


def produce(plan: RunPlan, inputs: Sequence[str], *, say: Say) -> ProduceResult | None:
    """Produce the run unless another producer holds it (then None: the caller follows it)."""
    settings, store, db = get_settings(), context.runs(), context.database()
    holder = producer_holder()
    taken = take_run(store, db, plan, holder, settings.producer_lease, say)
    if taken is None:
        return None
    if taken is not plan:  # taken over after a wait: the file may have changed meanwhile
        _check_content(db, plan.run_id, inputs)
    plan = taken
    producer = Producer(
        runs=store,
        db=db,
        ingest=Ingest(plan.run_id, tokenizer(settings), vault(settings)),
        send=send_batch,
        payer_routes=load_payer_routes(settings.payer_routes),
        payer_sheet=load_payer_sheet(settings.payer_sheet),
        batch_size=plan.batch_size,
        max_inflight=settings.max_inflight,
        holder=holder,
        lease=settings.producer_lease,
        resume_from=plan.produced if plan.resumed else None,
        order=context.order(),
        slices=settings.intake_slices,
    )
    try:
        result = producer.produce(list(inputs))
    except KeyboardInterrupt:  # a resume need not wait for this lease to run out
        store.release_producer(plan.run_id, holder)
        raise
    if result.cut_short:
        say(f"input cut short: {result.cut_short}; the {result.total} claims read go on")
    if plan.resumed:
        say(f"run {plan.run_id}: {result.enqueued} claims needed enqueueing again")
    return result


def _check_content(db: Database, run_id: str, inputs: Sequence[str]) -> None:
    row = db.get_run(run_id)
    if row is not None:
        lifecycle.check_content(row, inputs)


def portal_sync(say: Say | None = None) -> Sync:
    """A sync of ``RXFLEET_PORTAL_URL`` into this fleet (``rxfleet sync``); ``run_until``
    drives it."""
    _fleet()
    settings = get_settings()
    check_portal(settings)
    parts = SyncParts(
        portal=PortalClient(settings),
        store=PortalStore(get_redis(), settings.key_prefix),
        runs=context.runs(),
        db=context.database(),
        tokens=context.tokens(),
        token_source=context.gateway_client(),
        crosswalks=context.crosswalk(),
        settings=settings,
        send=send_batch,
        ingest=lambda run_id: Ingest(run_id, tokenizer(settings), vault(settings)),
        say=say or _quiet,
    )
    return Sync(parts, holder=producer_holder())


def _fleet(*, producer: bool = False) -> None:
    """A configured fleet (Redis and PostgreSQL), and the production guards: a producer
    needs both PHI keys and real gateway settings; a reader neither (``config.processes``)."""
    settings = get_settings()
    settings.redis_url_or_raise()
    settings.database_url_or_raise()
    secrets = secrets_of("enqueue") if producer else ()
    check_fleet(settings, secrets, gateway=producer)


def _paths(inputs: PathLike | Sequence[PathLike]) -> list[str]:
    if isinstance(inputs, str | os.PathLike):
        return [os.fspath(inputs)]
    return [os.fspath(p) for p in inputs]


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"claim field of type {type(value).__name__} is not JSON")
