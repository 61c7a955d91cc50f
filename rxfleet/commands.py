"""The CLI commands' bodies."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from rich.console import Console

from config import get_settings
from rxfleet.claims.work import WorkRecord
from rxfleet.errors import ConfigError, RunTimeout
from rxfleet.formats import preflight
from rxfleet.formats.x12 import load_payer_routes
from rxfleet.output import check_output, write_results
from rxfleet.phikeys import require_keys, tokenizer, vault
from rxfleet.producer import Ingest, produce, start_run
from rxfleet.report import Tally, progress_bar, summary, wait_for
from rxfleet.stores.connection import get_redis
from rxfleet.stores.runs import RunStore, run_store

EXIT_OK, EXIT_FAILED = 0, 1


def _runs() -> RunStore:
    settings = get_settings()
    return run_store(get_redis(), settings.key_prefix, settings.run_ttl_seconds)


def _batch_size(value: int | None) -> int:
    size = value or get_settings().batch_size
    if not 1 <= size <= 10_000:
        raise ConfigError("--batch-size must be 1 to 10000")
    return size


def _enqueue(inputs: list[str], batch_size: int) -> tuple[RunStore, str, int]:
    from workers.pipeline import send_batch

    settings = get_settings()
    require_keys(settings)
    runs = _runs()
    run_id = start_run(runs, settings, inputs, batch_size)
    ingest = Ingest(run_id, tokenizer(settings), vault(settings))
    routes = load_payer_routes(settings.payer_routes)
    result = produce(runs, run_id, inputs, ingest, batch_size, send_batch, routes)
    return runs, run_id, result.total


def run(args: argparse.Namespace) -> int:
    from rxfleet.cli import fleet_for_run

    if args.output:
        check_output(args.output)
    batch_size = _batch_size(args.batch_size)
    for path in args.inputs:
        preflight(path)  # exit 2 before anything starts or is enqueued
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
    for path in args.inputs:
        preflight(path)
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
    runs = _runs()
    if not runs.exists(run_id):
        raise ConfigError(f"no run {run_id} in this Redis (runs expire after their TTL)")
    return runs


def dlq(args: argparse.Namespace) -> int:
    from rxfleet import dlq as dead_letters

    get_settings().redis_url_or_raise()
    if args.dlq_command == "list":
        return dead_letters.show(_runs(), args.run, args.limit)
    return dead_letters.replay_command(_runs(), args.run)


def gateway(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rxfleet.gateway.sandbox.server import run_gateway

    run_gateway(args.host, args.port, Path(args.scenario) if args.scenario else None)
    return EXIT_OK


def token(args: argparse.Namespace) -> int:
    """The token's state, TTL and rotation counters, and the gateway's health: never the token."""
    from rxfleet.context import breaker, tokens
    from rxfleet.stores.connection import as_dict, as_text

    get_settings().redis_url_or_raise()
    store = tokens()
    current = store.current()
    state: dict[str, Any] = {"state": "missing"}
    if current is not None:
        state = {
            "state": "valid",
            "ttl_seconds": round(current.ttl(), 1),
            "version": current.version,
        }
    state["counters"] = store.stats()
    gate = breaker()
    until = as_text(gate.client.get(gate.keys.pause))
    state["gateway"] = {
        "breaker": gate.state(),
        "breaker_counters": as_dict(gate.client.hgetall(gate.keys.breaker_stats)),
        "pause_seconds": round(max(0.0, int(until) / 1000 - time.time()), 1) if until else 0.0,
    }
    print(json.dumps(state, indent=2))
    return EXIT_OK
