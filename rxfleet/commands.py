"""The CLI commands' bodies: each takes the parsed arguments and returns an exit code.

These sit at the top of the layers: they compose the producer, the stores, the
Celery wiring (chains are sent through ``workers.pipeline``) and, with no Redis
configured, the embedded fleet (``rxfleet.embedded`` plus ``workers.inprocess``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console

from config import Settings, get_settings
from rxfleet import context
from rxfleet import dlq as dead_letters
from rxfleet.claims.work import WorkRecord
from rxfleet.embedded import embedded_services
from rxfleet.errors import ConfigError, RunTimeout
from rxfleet.formats import preflight
from rxfleet.formats.x12 import load_payer_routes
from rxfleet.gateway.sandbox.server import run_gateway
from rxfleet.output import check_output, write_results
from rxfleet.phikeys import generated_env, require_keys, tokenizer, vault
from rxfleet.producer import Ingest, produce, start_run
from rxfleet.report import Tally, progress_bar, summary, wait_for
from rxfleet.stores.runs import RunStore
from workers import app as app_module
from workers.inprocess import beat_thread, worker_thread
from workers.pipeline import send_batch

EXIT_OK, EXIT_FAILED = 0, 1
EMBEDDED_CONCURRENCY = 4


@contextlib.contextmanager
def fleet_for_run() -> Iterator[bool]:
    """The embedded fleet when no Redis is configured; True when embedded."""
    if get_settings().redis_url:
        yield False
        return
    with embedded_services() as settings, _in_process_fleet(settings):
        yield True


@contextlib.contextmanager
def _in_process_fleet(settings: Settings) -> Iterator[None]:
    app = app_module.configure(settings)
    queues = [settings.queue_cpu, settings.queue_gateway]
    with worker_thread(app, queues, EMBEDDED_CONCURRENCY), beat_thread(app):
        yield


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


def _enqueue(inputs: list[str], batch_size: int) -> tuple[RunStore, str, int]:
    settings = get_settings()
    require_keys(settings)
    runs = context.runs()
    run_id = start_run(runs, context.crosswalk(), settings, inputs, batch_size)
    ingest = Ingest(run_id, tokenizer(settings), vault(settings))
    routes = load_payer_routes(settings.payer_routes)
    result = produce(runs, run_id, inputs, ingest, batch_size, send_batch, routes)
    return runs, run_id, result.total


def run(args: argparse.Namespace) -> int:
    if args.output:
        check_output(args.output)
    batch_size = _batch_size(args.batch_size)
    _preflight(args.inputs)
    console = Console()
    with fleet_for_run() as embedded:
        started = time.monotonic()
        runs, run_id, _ = _enqueue(args.inputs, batch_size)
        console.print(f"run {run_id}", highlight=False)
        bar, tick = progress_bar(console)
        with bar:
            done, total = wait_for(runs, run_id, args.timeout, tick)
        if total is None or done < total:
            return _unfinished(run_id, done, total, embedded)
        _finish(console, runs, run_id, total, args.output, time.monotonic() - started)
    return EXIT_OK


def _unfinished(run_id: str, done: int, total: int | None, embedded: bool) -> int:
    hint = (
        "the embedded fleet stops with this process; rerun with a larger --timeout"
        if embedded
        else f"`rxfleet wait {run_id}` and `rxfleet results {run_id}` pick it up again"
    )
    raise RunTimeout(f"run {run_id}: {done} of {total or '?'} claims terminal at timeout; {hint}")


def _finish(
    console: Console, runs: RunStore, run_id: str, total: int, output: str | None, elapsed: float
) -> None:
    tally = Tally()
    rows = tally.watch(runs.results(run_id, total), iter(range(total)))
    if output:
        write_results(output, rows)
    else:
        for _ in rows:
            pass
    where = [_where(r) for r in runs.load(run_id, tally.quarantined)]
    summary(console, run_id, tally, elapsed, where)
    if output:
        console.print(f"results: {output}", highlight=False)


def _where(record: WorkRecord) -> tuple[str, str, str, str]:
    """File:line, claim, field and code of a quarantined claim's first issue."""
    issue = record.issues[0] if record.issues else None
    field = (issue.field or "(the record)") if issue else ""
    return record.where, record.claim_id or "?", field, issue.code if issue else ""


def enqueue(args: argparse.Namespace) -> int:
    get_settings().redis_url_or_raise()
    _preflight(args.inputs)
    _, run_id, _ = _enqueue(args.inputs, _batch_size(args.batch_size))
    print(run_id)
    return EXIT_OK


def wait(args: argparse.Namespace) -> int:
    runs = _existing_run(args.run_id)
    console = Console()
    started = time.monotonic()
    bar, tick = progress_bar(console)
    with bar:
        done, total = wait_for(runs, args.run_id, args.timeout, tick)
    if total is None or done < total:
        return _unfinished(args.run_id, done, total, embedded=False)
    _finish(console, runs, args.run_id, total, args.output, time.monotonic() - started)
    return EXIT_OK


def results(args: argparse.Namespace) -> int:
    check_output(args.output)
    runs = _existing_run(args.run_id)
    done, total = runs.progress(args.run_id)
    count = write_results(args.output, runs.results(args.run_id, total or 0))
    print(f"{count} results written to {args.output} ({done} of {total or '?'} claims terminal)")
    return EXIT_OK if total is not None and done >= total else EXIT_FAILED


def _existing_run(run_id: str) -> RunStore:
    get_settings().redis_url_or_raise()
    runs = context.runs()
    if not runs.exists(run_id):
        raise ConfigError(f"no run {run_id} in this Redis (runs expire after their TTL)")
    return runs


def dlq(args: argparse.Namespace) -> int:
    get_settings().redis_url_or_raise()
    if args.dlq_command == "list":
        return dead_letters.show(context.dead_letters(), args.run, args.limit)
    stores = dead_letters.ReplayStores(context.runs(), context.dead_letters(), context.crosswalk())
    return dead_letters.replay_command(stores, args.run, send_batch)


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
    breaker = context.breaker()
    state["gateway"] = {
        "breaker": breaker.state(),
        "breaker_counters": breaker.counters(),
        "pause_seconds": round(context.pause().remaining(), 1),
    }
    print(json.dumps(state, indent=2))
    return EXIT_OK


def keys(args: argparse.Namespace) -> int:
    """``rxfleet keys generate``: fresh settings lines, for an ``.env`` file or a secret store."""
    for line in generated_env():
        print(line)
    return EXIT_OK
