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

import redis

from config import Settings
from rxfleet.claims.crosswalk import file_digest
from rxfleet.claims.rejects import matrix
from rxfleet.errors import ConfigError, InfrastructureError
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
    with path.open("rb") as handle:
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
    while True:  # one open run per input: a creator that lost the race picks it up
        found = db.find_open_run(digest)
        if found is not None:
            plan = _picked_up(found)
            break
        inputs_text = "\n".join(str(Path(p)) for p in inputs)
        if db.create_run(plan.run_id, inputs=inputs_text, input_hash=digest,
                         options={**options, "batch_size": batch_size}):  # fmt: skip
            break
    _open_in_redis(runs, db, plan, options)
    return plan


def reopen(runs: RunStore, db: Database, crosswalks: CrosswalkCache, settings: Settings,
           run_id: str) -> tuple[RunPlan, list[str]]:  # fmt: skip
    """The run ``run_id`` as the database knows it, made known to Redis; and its inputs."""
    found = db.get_run(run_id)
    if found is None:
        raise ConfigError(f"no run {run_id} in the database")
    if found["finished_at"] is not None:
        raise ConfigError(f"run {run_id} is {found['state']}: nothing to resume")
    plan = _picked_up(found)
    options = dict(found["options"] or {})
    options["crosswalk"] = crosswalks.load(settings.crosswalk)
    _open_in_redis(runs, db, plan, options)
    return plan, [p for p in str(found["inputs"]).split("\n") if p]


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

    @property
    def finished(self) -> bool:
        return self.total is not None and self.done >= self.total


def progress(runs: RunStore, db: Database, run_id: str) -> Progress:
    """Claims recorded and the total: Redis when it knows the run, else the database."""
    done, total = runs.progress(run_id)
    if done is not None and total is not None:
        return Progress(done, total)
    row = db.get_run(run_id)
    if row is None:
        raise ConfigError(f"no run {run_id} in the database")
    if done is None:
        done = db.result_count(run_id)
    total = total if total is not None else (row["total"] if row["state"] != "producing" else None)
    return Progress(done, total, str(row["state"]))


@dataclass
class Waiter:
    """Follows a run until every claim is recorded, riding through Redis outages."""

    read: Callable[[], Progress]
    say: Say
    outage: float = 180.0
    poll: float = 0.25
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
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self._outage(type(exc).__name__)
            return None
        if self._away is not None:
            self.say("Redis is back; following the run again")
            self._away = None
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
