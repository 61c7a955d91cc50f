"""The CLI commands' bodies: each takes the parsed arguments and returns an exit code.

These sit at the top of the layers: they compose the producer, the stores, the
system of record, the Celery wiring (chains are sent through
``workers.pipeline``) and, with no Redis configured, the embedded fleet
(``rxfleet.embedded`` plus ``workers.inprocess``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from config import Settings, get_settings
from rxfleet import context, lifecycle
from rxfleet import dlq as dead_letters
from rxfleet.embedded import embedded_services
from rxfleet.errors import ConfigError, RunTimeout
from rxfleet.formats import preflight
from rxfleet.formats.x12 import load_payer_routes
from rxfleet.gateway.sandbox.server import run_gateway
from rxfleet.lifecycle import RunPlan
from rxfleet.output import check_output, write_results
from rxfleet.phikeys import generated_env, require_keys, tokenizer, vault
from rxfleet.producer import Ingest, Producer, ProduceResult
from rxfleet.report import Tally, Waiter, WorkerWatch, progress_bar, quarantined, summary
from workers import app as app_module
from workers.inprocess import beat_thread, worker_thread
from workers.pipeline import send_batch

EXIT_OK, EXIT_FAILED = 0, 1
EMBEDDED_CONCURRENCY = 4


def say(line: str) -> None:
    """One line for the operator, on stderr."""
    print(f"rxfleet: {line}", file=sys.stderr, flush=True)


# -- the fleet a command runs against -------------------------------------------


@contextlib.contextmanager
def fleet_for_run() -> Iterator[bool]:
    """The embedded fleet when no Redis is configured; True when embedded."""
    settings = get_settings()
    if settings.redis_url:
        settings.database_url_or_raise()
        yield False
        return
    with embedded_services() as embedded, _in_process_fleet(embedded):
        yield True


@contextlib.contextmanager
def _in_process_fleet(settings: Settings) -> Iterator[None]:
    app = app_module.configure(settings)
    queues = [settings.queue_cpu, settings.queue_gateway]
    with worker_thread(app, queues, EMBEDDED_CONCURRENCY), beat_thread(app):
        yield


def _served_queues() -> set[str]:
    replies = app_module.app.control.inspect(timeout=1.0).active_queues() or {}
    return {q["name"] for queues in replies.values() for q in queues or []}


def _batch_size(value: int | None) -> int:
    size = value or get_settings().batch_size
    if not 1 <= size <= 10_000:
        raise ConfigError("--batch-size must be 1 to 10000")
    return size


def _preflight(inputs: list[str]) -> None:
    """Exit 2 before anything starts or is enqueued when an input cannot be read."""
    routes = load_payer_routes(get_settings().payer_routes)
    for path in inputs:
        preflight(path, routes)


# -- producing ---------------------------------------------------------------------


def _open(inputs: list[str], batch_size: int, new: bool) -> RunPlan:
    settings = get_settings()
    require_keys(settings)
    plan = lifecycle.open_run(context.runs(), context.database(), context.crosswalk(), settings,
                              inputs, batch_size, new=new)  # fmt: skip
    verb = "picking up run" if plan.resumed else "run"
    say(f"{verb} {plan.run_id}")  # before the first claim is read
    return plan


def _produce(plan: RunPlan, inputs: list[str]) -> ProduceResult | None:
    """Produce the run unless another producer holds it (then this command joins it)."""
    settings, runs = get_settings(), context.runs()
    holder = f"{socket.gethostname()}:{os.getpid()}:{time.monotonic_ns()}"
    if not runs.claim_producer(plan.run_id, holder, settings.producer_lease):
        say(f"another producer is enqueueing run {plan.run_id}: following it")
        produced = _await_producer(plan.run_id, holder)
        if produced is None:
            return None
        say(f"the other producer of run {plan.run_id} stopped at claim {produced}: taking over")
        plan = dataclasses.replace(plan, resumed=True, produced=produced)
    producer = Producer(
        runs=runs,
        db=context.database(),
        ingest=Ingest(plan.run_id, tokenizer(settings), vault(settings)),
        send=send_batch,
        payer_routes=load_payer_routes(settings.payer_routes),
        batch_size=plan.batch_size,
        max_inflight=settings.max_inflight,
        holder=holder,
        lease=settings.producer_lease,
        resume_from=plan.produced if plan.resumed else None,
    )
    result = producer.produce(inputs)
    if result.cut_short:
        say(f"input cut short: {result.cut_short}; the {result.total} claims read go on")
    if plan.resumed:
        say(f"run {plan.run_id}: {result.enqueued} claims needed enqueueing again")
    return result


def _await_producer(run_id: str, holder: str) -> int | None:
    """Wait while another producer holds the run: None once it has produced the whole
    input; else (its lease ran out: it died) take the run over, and say how far it got."""
    settings, runs, db = get_settings(), context.runs(), context.database()
    while True:
        time.sleep(0.5)
        if not runs.claim_producer(run_id, holder, settings.producer_lease):
            continue
        row = db.get_run(run_id)
        if row is None or row["state"] != "producing":
            runs.release_producer(run_id, holder)
            return None
        return int(row["produced"] or 0)


# -- following and finishing ----------------------------------------------------------


def _follow(
    console: Console, run_id: str, timeout: float | None, embedded: bool
) -> lifecycle.Progress:
    settings = get_settings()
    waiter = Waiter(lambda: lifecycle.progress(context.runs(), context.database(), run_id),
                    say, outage=settings.redis_outage)  # fmt: skip
    queues = [settings.queue_cpu, settings.queue_gateway]
    watch = nullwatch() if embedded else WorkerWatch(_served_queues, queues, say)
    bar, tick = progress_bar(console)
    with watch, bar:
        return waiter.wait(timeout, tick)


@contextlib.contextmanager
def nullwatch() -> Iterator[None]:
    yield


def _finish(console: Console, run_id: str, output: str | None, elapsed: float,
            embedded: bool) -> None:  # fmt: skip
    db = context.database()
    tally = Tally()
    rows = tally.watch(db.results(run_id))
    if output:
        write_results(output, rows)
    else:
        for _ in rows:
            pass
    summary(console, run_id, tally, elapsed)
    count = tally.statuses.get("QUARANTINED", 0)
    if count:
        hint = "in `rxfleet dlq list`" if not embedded else "in the results file"
        firsts, _ = dead_letters.listing(db, run_id, limit=10, offset=0)
        quarantined(console, [r for r in firsts if r["status"] == "QUARANTINED"], count, hint)
    if output:
        console.print(f"results: {output}", highlight=False)


def _unfinished(run_id: str, progress: lifecycle.Progress, embedded: bool) -> int:
    hint = (
        "the embedded fleet stops with this process; rerun with a larger --timeout"
        if embedded
        else f"`rxfleet wait {run_id}` and `rxfleet results {run_id}` pick it up again"
    )
    done, total = progress.done, progress.total
    raise RunTimeout(f"run {run_id}: {done} of {total or '?'} claims terminal at timeout; {hint}")


def _interrupted(run_id: str | None, output: str | None, embedded: bool) -> int:
    """Ctrl-C: one true line (and, embedded, the partial results where asked)."""
    if run_id is None:
        say("interrupted before the run started; nothing was enqueued")
        return EXIT_FAILED
    progress = lifecycle.progress(context.runs(), context.database(), run_id)
    where = ""
    if embedded and output:
        write_results(output, context.database().results(run_id))
        where = f"; the {progress.done} finished are in {output}"
    after = (
        "the embedded fleet stopped with it" if embedded else f"`rxfleet wait {run_id}` follows it"
    )
    say(f"interrupted: run {run_id} has {progress.done} of {progress.total or '?'} claims "
        f"terminal{where}; {after}")  # fmt: skip
    return EXIT_FAILED


# -- the commands -----------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    if args.output:
        check_output(args.output)
    batch_size = _batch_size(args.batch_size)
    _preflight(args.inputs)
    console = Console()
    run_id: str | None = None
    with fleet_for_run() as embedded:
        try:
            started = time.monotonic()
            plan = _open(args.inputs, batch_size, args.new)
            run_id = plan.run_id
            _produce(plan, args.inputs)
            progress = _follow(console, run_id, args.timeout, embedded)
            if not progress.finished:
                return _unfinished(run_id, progress, embedded)
            _finish(console, run_id, args.output, time.monotonic() - started, embedded)
        except KeyboardInterrupt:
            return _interrupted(run_id, args.output, embedded)
    return EXIT_OK


def enqueue(args: argparse.Namespace) -> int:
    get_settings().redis_url_or_raise()
    get_settings().database_url_or_raise()
    _preflight(args.inputs)
    plan = _open(args.inputs, _batch_size(args.batch_size), args.new)
    _produce(plan, args.inputs)
    print(plan.run_id)
    return EXIT_OK


def wait(args: argparse.Namespace) -> int:
    _require_fleet()
    console = Console()
    started = time.monotonic()
    try:
        progress = _follow(console, args.run_id, args.timeout, embedded=False)
    except KeyboardInterrupt:
        return _interrupted(args.run_id, None, embedded=False)
    if not progress.finished:
        return _unfinished(args.run_id, progress, embedded=False)
    _finish(console, args.run_id, args.output, time.monotonic() - started, embedded=False)
    return EXIT_OK


def resume(args: argparse.Namespace) -> int:
    """Re-produce what is missing of a run and follow it to the end."""
    _require_fleet()
    settings = get_settings()
    require_keys(settings)
    plan, inputs = lifecycle.reopen(context.runs(), context.database(), context.crosswalk(),
                                    settings, args.run_id)  # fmt: skip
    _preflight(inputs)
    say(f"picking up run {plan.run_id}")
    _produce(plan, inputs)
    return wait(argparse.Namespace(run_id=plan.run_id, timeout=args.timeout, output=args.output))


def abort(args: argparse.Namespace) -> int:
    _require_fleet()
    lifecycle.abort(context.runs(), context.database(), args.run_id)
    say(f"run {args.run_id}: aborting; claims not yet sent end 99 (reason aborted)")
    return EXIT_OK


def runs(args: argparse.Namespace) -> int:
    """The runs, newest first: id, input, state, claims terminal / total, age, last progress."""
    _require_fleet()
    db, console = context.database(), Console()
    rows = [_run_row(db, row) for row in db.list_runs(args.limit)]
    if not console.is_terminal:
        for row in rows:
            print(json.dumps(row))
        return EXIT_OK
    table = Table(show_edge=False)
    for column in ("run", "input", "state", "terminal", "age", "last progress"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["run_id"], row["input"], row["state"],
                      f"{row['terminal']} / {row['total'] or '?'}", row["age"],
                      row["updated_at"])  # fmt: skip
    console.print(table)
    return EXIT_OK


def _run_row(db: Any, row: dict[str, Any]) -> dict[str, Any]:
    age = time.time() - row["created_at"].timestamp()
    return {
        "run_id": row["run_id"],
        "input": Path(str(row["inputs"]).split("\n")[0]).name,
        "state": row["state"] + (f" ({row['note']})" if row.get("note") else ""),
        "terminal": db.result_count(row["run_id"]),
        "total": row["total"],
        "age": f"{age / 3600:.1f} h" if age >= 3600 else f"{age / 60:.0f} min",
        "updated_at": row["updated_at"].isoformat(timespec="seconds"),
    }


def results(args: argparse.Namespace) -> int:
    check_output(args.output)
    _require_fleet()
    db = context.database()
    if db.get_run(args.run_id) is None:
        raise ConfigError(f"no run {args.run_id} in the database")
    progress = lifecycle.progress(context.runs(), db, args.run_id)
    count = write_results(args.output, db.results(args.run_id))
    total = progress.total
    print(f"{count} results written to {args.output} ({count} of {total or '?'} claims terminal)")
    return EXIT_OK if total is not None and count >= total else EXIT_FAILED


def audit(args: argparse.Namespace) -> int:
    """Each claim's path through the stages, from the system of record (JSON lines)."""
    _require_fleet()
    db = context.database()
    if db.get_run(args.run_id) is None:
        raise ConfigError(f"no run {args.run_id} in the database")
    events = ({k: _plain(v) for k, v in e.items() if k != "id"}
              for e in db.audit(args.run_id, args.claim))  # fmt: skip
    handle = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        for event in events:
            handle.write(json.dumps(event) + "\n")
    finally:
        if args.output:
            handle.close()
    return EXIT_OK


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _require_fleet() -> None:
    settings = get_settings()
    settings.redis_url_or_raise()
    settings.database_url_or_raise()


def dlq(args: argparse.Namespace) -> int:
    _require_fleet()
    if args.dlq_command == "list":
        return _dlq_list(args)
    settings = get_settings()
    stores = dead_letters.ReplayStores(context.runs(), context.database(), context.crosswalk(),
                                       vault(settings), settings)  # fmt: skip
    new_id, count = dead_letters.replay(stores, args.run, send_batch)
    if new_id is None:
        print("nothing replayable in the dead letters")
    else:
        print(f"replaying {count} claims as run {new_id}; follow it with `rxfleet wait {new_id}`")
    return EXIT_OK


def _dlq_list(args: argparse.Namespace) -> int:
    rows, total = dead_letters.listing(context.database(), args.run, args.limit, args.offset)
    for row in rows:
        print(json.dumps(row))
    shown = args.offset + len(rows)
    if shown < total:
        say(f"{total - shown} more; `--offset {shown}` shows the next")
    return EXIT_OK


def gateway(args: argparse.Namespace) -> int:
    run_gateway(args.host, args.port, Path(args.scenario) if args.scenario else None)
    return EXIT_OK


def token(args: argparse.Namespace) -> int:
    """The token's state, TTL and rotation counters, and the gateway's health: never the token."""
    get_settings().redis_url_or_raise()
    store = context.tokens()
    current = store.current()
    state: dict[str, Any] = {"state": "missing"}
    if current is not None:
        state = {
            "state": "valid",
            "ttl_seconds": round(current.ttl(), 1),
            "version": current.version,
        }
    state["counters"] = store.stats()
    health, auth = context.health_breaker(), context.auth_breaker()
    state["gateway"] = {
        "breaker": health.state(),
        "breaker_counters": health.counters(),
        "auth_breaker": auth.state(),
        "auth_breaker_counters": auth.counters(),
        "pause_seconds": round(context.pause().remaining(), 1),
    }
    print(json.dumps(state, indent=2))
    return EXIT_OK


def keys(args: argparse.Namespace) -> int:
    """``rxfleet keys generate``: fresh settings lines, for an ``.env`` file or a secret store."""
    for line in generated_env():
        print(line)
    return EXIT_OK
