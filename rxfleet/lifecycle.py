"""Runs: their identity, their start or pick-up, their progress, their end.

A run is keyed by its input: the SHA-256 of every input file's bytes plus the
options that change its outcome (the crosswalk, reject-matrix and payer-route
versions). Running the same input again while its run is unfinished picks that
run up instead of starting another; ``new=True`` forces a fresh run.

Progress is read from Redis (the done count and the total) and, where Redis
does not know the run (restarted empty), from the database, which is the word
that counts. A ``Waiter`` follows a run to its end, riding through a Redis
outage of up to ``RXFLEET_REDIS_OUTAGE`` seconds; the batch that records a
run's last claim closes it (``finish_if_complete``).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import Settings
from rxfleet.claims.crosswalk import file_digest
from rxfleet.claims.rejects import matrix
from rxfleet.errors import ConfigError, InfrastructureError, InputError
from rxfleet.formats.textio import open_binary
from rxfleet.stores.connection import REDIS_OUTAGE
from rxfleet.stores.crosswalk import CrosswalkCache
from rxfleet.stores.database import Database
from rxfleet.stores.runs import RunStore

Tick = Callable[[int, int | None], None]  # claims done, the total when known
Say = Callable[[str], None]


def new_run_id() -> str:
    """Sortable by time, unique: ``20261126T031500-3f9a1c``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(3)


@dataclass(frozen=True)
class RunPlan:
    """The run a command works on, and how far its producer got."""

    run_id: str
    batch_size: int
    resumed: bool = False
    produced: int = 0
    state: str = "producing"


def outcome_options(settings: Settings, crosswalk: str) -> dict[str, str]:
    """The versions that shape a run's results: part of the run's identity."""
    return {
        "crosswalk": crosswalk,
        "reject_matrix": matrix(settings.reject_matrix).version,
        "payer_routes": file_digest(settings.payer_routes),
        "payer_sheet": file_digest(settings.payer_sheet),
    }


def input_digest(paths: Sequence[str], options: dict[str, str]) -> str:
    """SHA-256 over every input's bytes, in order, and the outcome options."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for path in paths:
        digest.update(b"\x00" + file_digest_full(Path(path)).encode())
    return digest.hexdigest()


def file_digest_full(path: Path) -> str:
    digest = hashlib.sha256()
    with open_binary(str(path)) as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def open_run(
    runs: RunStore,
    db: Database,
    crosswalks: CrosswalkCache,
    settings: Settings,
    inputs: Sequence[str],
    batch_size: int,
    *,
    new: bool = False,
) -> RunPlan:
    """Pick up the unfinished run of the same input, or create one; make it known to Redis."""
    crosswalk = crosswalks.load(settings.crosswalk)
    options = outcome_options(settings, crosswalk)
    digest = input_digest(inputs, options)
    plan = RunPlan(new_run_id(), batch_size)
    if new:  # a run of its own: later plain runs of the input do not pick it up
        digest = f"{digest}#{plan.run_id}"
    inputs_text = "\n".join(str(Path(p)) for p in inputs)
    plan = _find_or_create(db, plan, digest, inputs_text, options)
    _open_in_redis(runs, db, plan, options)
    return plan


def _find_or_create(
    db: Database, plan: RunPlan, key: str, inputs: str, options: dict[str, str]
) -> RunPlan:
    """The unfinished run keyed ``key``, or ``plan``'s, created (one open run per key:
    a creator that lost the race picks the other's up)."""
    while True:
        found = db.find_open_run(key)
        if found is not None:
            return _picked_up(found)
        if db.create_run(plan.run_id, inputs=inputs, input_hash=key,
                         options={**options, "batch_size": plan.batch_size}):  # fmt: skip
            return plan


def open_source_run(
    runs: RunStore, db: Database, crosswalks: CrosswalkCache, settings: Settings,
    key: str, inputs: str, batch_size: int,
) -> RunPlan:  # fmt: skip
    """The unfinished run of a continuous source keyed ``key`` (a portal's day), or a
    new one; made known to Redis. ``inputs`` describes the source (``rxfleet runs``)."""
    options = outcome_options(settings, crosswalks.load(settings.crosswalk))
    plan = _find_or_create(db, RunPlan(new_run_id(), batch_size), key, inputs, options)
    _open_in_redis(runs, db, plan, options)
    return plan


def close_source_run(runs: RunStore, db: Database, run_id: str, total: int) -> bool:
    """A continuous source's run takes no more claims: ``total`` is known, and the run
    finishes once each is recorded (now, if they are). True when it finished now."""
    runs.set_meta(run_id, total=total)
    db.set_run(run_id, state="produced", total=total, produced=total)
    done = runs.done(run_id)
    return finish_if_complete(
        runs, db, run_id, done if done is not None else db.result_count(run_id)
    )


def reopen(runs: RunStore, db: Database, crosswalks: CrosswalkCache, settings: Settings,
           run_id: str) -> tuple[RunPlan, list[str]]:  # fmt: skip
    """The run ``run_id`` as the database knows it, made known to Redis; and its inputs,
    once their content is checked to be the run's (``check_content``)."""
    found = db.get_run(run_id)
    if found is None:
        raise ConfigError(f"no run {run_id} in the database")
    if found["finished_at"] is not None:
        raise ConfigError(f"run {run_id} is {found['state']}: nothing to resume")
    inputs = [p for p in str(found["inputs"]).split("\n") if p]
    check_content(found, inputs)
    plan = _picked_up(found)
    options = dict(found["options"] or {})
    options["crosswalk"] = crosswalks.load(settings.crosswalk)
    _open_in_redis(runs, db, plan, options)
    return plan, inputs


def check_content(row: dict[str, Any], inputs: Sequence[str]) -> None:
    """Raise ``InputError`` unless ``inputs`` hold, byte for byte, what the run ``row``
    was started with (its input hash, over the options it was started with): a file
    replaced at the same path would otherwise be read as the rest of the run."""
    options = {k: str(v) for k, v in (row["options"] or {}).items() if k != "batch_size"}
    started_with = str(row["input_hash"] or "").split("#", 1)[0]
    if started_with and input_digest(inputs, options) != started_with:
        run_id = row["run_id"]
        raise InputError(
            ", ".join(inputs),
            f"not the content run {run_id} was started with (its SHA-256 differs); nothing "
            f"was enqueued: put the run's file back, or `rxfleet abort {run_id}` and run "
            "this file as a new run",
        )


def _picked_up(row: dict[str, Any]) -> RunPlan:
    options = row["options"] or {}
    return RunPlan(
        run_id=str(row["run_id"]),
        batch_size=int(options.get("batch_size", 500)),
        resumed=True,
        produced=int(row["produced"] or 0),
        state=str(row["state"]),
    )


def _open_in_redis(runs: RunStore, db: Database, plan: RunPlan, options: dict[str, Any]) -> None:
    meta = {
        "crosswalk": str(options["crosswalk"]),
        "reject_matrix": str(options.get("reject_matrix", "")),
        "batch_size": str(plan.batch_size),
    }
    runs.open(plan.run_id, meta)
    if plan.resumed:
        runs.seed_done(plan.run_id, db.result_count(plan.run_id))
        row = db.get_run(plan.run_id)
        if row is not None and row["state"] == "produced" and row["total"] is not None:
            runs.set_meta(plan.run_id, total=int(row["total"]))


@dataclass(frozen=True)
class Progress:
    done: int
    total: int | None  # None while the producer still reads
    state: str = ""
    known: bool = True  # whether Redis holds the run (False: it lost it, restarted empty)

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total


def progress(runs: RunStore, db: Database, run_id: str) -> Progress:
    """Claims recorded and the total: Redis when it knows the run, else the database."""
    done, total = runs.progress(run_id)
    if done is not None and total is not None:
        return Progress(done, total)
    known = runs.knows(run_id)
    row = db.get_run(run_id)
    if row is None:
        raise ConfigError(f"no run {run_id} in the database")
    if done is None:
        done = db.result_count(run_id)
    total = total if total is not None else (row["total"] if row["state"] != "producing" else None)
    return Progress(done, total, str(row["state"]), known)


@dataclass
class Waiter:
    """Follows a run until every claim is recorded, riding through Redis outages."""

    read: Callable[[], Progress]
    say: Say
    outage: float = 180.0
    #: Seconds between two reads of the progress (two Redis counters): a run's end is
    #: seen within this (at 0.25 it was seen 0.125 s late on average).
    poll: float = 0.1
    #: Picks the run up again where Redis lost it (re-produces what is neither recorded
    #: nor in flight); None: only the database's progress is followed.
    recover: Callable[[], None] | None = None
    _away: float | None = None

    def wait(self, timeout: float | None, tick: Tick) -> Progress:
        """Until finished, or ``timeout`` (None: 600 s plus 0.1 s a claim) passes."""
        started = time.monotonic()
        while True:
            progress = self._read()
            if progress is None:
                continue
            tick(progress.done, progress.total)
            if progress.finished:
                return progress
            limit = timeout if timeout is not None else 600 + 0.1 * (progress.total or 0)
            if time.monotonic() - started >= limit:
                return progress
            time.sleep(self.poll)

    def _read(self) -> Progress | None:
        try:
            progress = self.read()
            if self._away is not None:
                self.say("Redis is back; following the run again")
                self._away = None
            if not progress.known and not progress.finished and self.recover is not None:
                self.say("Redis no longer holds the run (restarted empty): picking it up again")
                self.recover()
                progress = self.read()
        except REDIS_OUTAGE as exc:
            self._outage(type(exc).__name__)
            return None
        return progress

    def _outage(self, what: str) -> None:
        now = time.monotonic()
        if self._away is None:
            self._away = now
            self.say(f"Redis is away ({what}); waiting up to {self.outage:.0f} s for it")
        elif now - self._away > self.outage:
            raise InfrastructureError(f"Redis unreachable for {self.outage:.0f} s; giving up")
        time.sleep(min(2.0, self.outage / 10))


def abort(runs: RunStore, db: Database, run_id: str) -> bool:
    """Stop sending: the producer stops, open claims end 99 (reason ``ABORTED``). False
    when the run had already finished (nothing to stop); ``ConfigError`` when there is
    no such run."""
    row = db.get_run(run_id)
    if row is None:
        raise ConfigError(f"no run {run_id} in the database")
    if row["state"] == "finished":
        return False
    runs.abort(run_id)
    db.set_run(run_id, state="aborting", note="aborted by an operator")
    return True


def finish_if_complete(runs: RunStore, db: Database, run_id: str, done: int | None) -> bool:
    """Close the run once every claim of a fully produced run is recorded (idempotent)."""
    total = runs.meta(run_id).get("total")
    if total is None or done is None or done < int(total):
        return False
    if db.result_count(run_id) < int(total):  # the database is the word that counts
        return False
    counts = db.counts(run_id)
    db.set_run(run_id, state="finished", counts=counts, finished_at=datetime.now(UTC))
    runs.finish(run_id)
    return True
