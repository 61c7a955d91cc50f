"""The CLI commands' bodies: each takes the parsed arguments and returns an exit code.

These sit at the top of the layers: they compose the producer, the stores, the
system of record, the Celery wiring (chains are sent through
``workers.pipeline``) and, with no Redis configured, the embedded fleet
(``rxfleet.embedded`` plus ``workers.inprocess``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from config import Settings, get_settings
from rxfleet import api, context, history, lifecycle
from rxfleet import dlq as dead_letters
from rxfleet.embedded import embedded_services
from rxfleet.errors import ConfigError, RunTimeout
from rxfleet.gateway.sandbox.server import run_gateway
from rxfleet.lifecycle import Waiter
from rxfleet.metrics import serve
from rxfleet.output import check_output, write_results
from rxfleet.phikeys import generated_env, vault
from rxfleet.producer import ProduceResult
from rxfleet.report import (
    HoldWatch,
    Tally,
    WorkerWatch,
    progress_bar,
    quarantine_tsv,
    quarantined,
    summary,
    summary_dict,
    summary_tsv,
    utc_clock,
)
from rxfleet.stores.database import LetterFilter
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
        try:
            yield True
        finally:
            context.forget()  # the embedded worker's sender, database and client go with it


@contextlib.contextmanager
def _in_process_fleet(settings: Settings) -> Iterator[None]:
    app = app_module.configure(settings)
    queues = [settings.queue_cpu, settings.queue_gateway]
    with worker_thread(app, queues, EMBEDDED_CONCURRENCY), beat_thread(app):
        yield


def _served_queues() -> set[str]:
    replies = app_module.app.control.inspect(timeout=1.0).active_queues() or {}
    return {q["name"] for queues in replies.values() for q in queues or []}


# -- following and finishing ----------------------------------------------------------


def _follow(
    console: Console, run_id: str, timeout: float | None, embedded: bool
) -> lifecycle.Progress:
    settings = get_settings()
    waiter = Waiter(lambda: lifecycle.progress(context.runs(), context.database(), run_id),
                    say, outage=settings.redis_outage)  # fmt: skip
    queues = [settings.queue_cpu, settings.queue_gateway]
    watch = contextlib.nullcontext() if embedded else WorkerWatch(_served_queues, queues, say)
    held = HoldWatch(context.pause().held, say)
    bar, tick = progress_bar(console)
    with watch, held, bar:
        return waiter.wait(timeout, tick)


def _finish(console: Console, run_id: str, output: str | None, elapsed: float,
            embedded: bool, as_json: bool = False) -> None:  # fmt: skip
    """Results to ``output``; the summary: JSON (--json), TSV in a pipe, tables on a terminal."""
    db = context.database()
    tally = Tally()
    rows = tally.watch(db.results(run_id))
    if output:
        write_results(output, rows)
    else:
        for _ in rows:
            pass
    count = tally.statuses.get("QUARANTINED", 0)
    firsts: list[dict[str, Any]] = []
    if count:
        page, _ = dead_letters.listing(db, run_id, limit=10, offset=0)
        firsts = [r for r in page if r["status"] == "QUARANTINED"]
    if as_json:
        print(json.dumps(summary_dict(run_id, tally, elapsed, output, firsts)), flush=True)
        return
    if not console.is_terminal:
        for line in summary_tsv(run_id, tally, elapsed, output, firsts):
            print(line)
        return
    summary(console, run_id, tally, elapsed)
    if count:
        hint = "in `rxfleet dlq list`" if not embedded else "in the results file"
        quarantined(console, firsts, count, hint)
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


def _console(as_json: bool) -> Console:
    """Progress on the terminal; with ``--json`` on stderr, so stdout holds JSON only."""
    return Console(stderr=True) if as_json else Console()


def run(args: argparse.Namespace) -> int:
    if args.dry_run:
        return _dry_run(args)
    if args.output:
        check_output(args.output)
    batch_size = api.batch_size_of(args.batch_size)
    api.check_inputs(args.inputs)  # exit 2 before anything starts when an input is unreadable
    console = _console(args.json)
    run_id: str | None = None
    produced: ProduceResult | None = None
    with fleet_for_run() as embedded:
        try:
            started = time.monotonic()
            plan = api.open_plan(args.inputs, batch_size, new=args.new, say=say)
            run_id = plan.run_id
            produced = api.produce(plan, args.inputs, say=say)
            progress = _follow(console, run_id, args.timeout, embedded)
            if not progress.finished:
                return _unfinished(run_id, progress, embedded)
            _finish(console, run_id, args.output, time.monotonic() - started, embedded, args.json)
        except KeyboardInterrupt:
            return _interrupted(run_id, args.output, embedded)
    # An input that could not be read to its end: what was read is finished and
    # exported, and the exit says the input was not all processed.
    return EXIT_FAILED if produced is not None and produced.cut_short else EXIT_OK


def _dry_run(args: argparse.Namespace) -> int:
    """Read and validate only: nothing enqueued, nothing sent, no fleet started."""
    started = time.monotonic()
    found = api.dry_run(args.inputs)
    elapsed = time.monotonic() - started
    if args.json:
        print(json.dumps({"dry_run": True, **found.as_dict(),
                          "elapsed_seconds": round(elapsed, 3)}))  # fmt: skip
        return EXIT_OK
    console = Console()
    if not console.is_terminal:
        print(f"total\t{found.total}")
        print(f"would_quarantine\t{found.quarantined}")
        print(f"would_send\t{found.total - found.quarantined}")
        for code, n in found.codes.most_common():
            print(f"code\t{code}\t{n}")
        for row in found.first:
            print(quarantine_tsv(row))
        return EXIT_OK
    console.print(f"dry run: {found.total} claims read, {found.quarantined} would be "
                  f"quarantined, {found.total - found.quarantined} sent; nothing was enqueued",
                  highlight=False)  # fmt: skip
    codes = Table(show_edge=False)
    codes.add_column("code", no_wrap=True)
    codes.add_column("claims", justify="right")
    for code, n in found.codes.most_common():
        codes.add_row(code, str(n))
    if found.codes:
        console.print(codes)
        quarantined(console, found.first, found.quarantined, "a run lists all of them")
    return EXIT_OK


def enqueue(args: argparse.Namespace) -> int:
    run_handle = api.enqueue(args.inputs, batch_size=args.batch_size, new=args.new, say=say)
    print(run_handle.id)
    return EXIT_OK


def wait(args: argparse.Namespace) -> int:
    _require_fleet()
    as_json = bool(getattr(args, "json", False))
    console = _console(as_json)
    started = time.monotonic()
    try:
        progress = _follow(console, args.run_id, args.timeout, embedded=False)
    except KeyboardInterrupt:
        return _interrupted(args.run_id, None, embedded=False)
    if not progress.finished:
        return _unfinished(args.run_id, progress, embedded=False)
    _finish(console, args.run_id, args.output, time.monotonic() - started, False, as_json)
    return EXIT_OK


def resume(args: argparse.Namespace) -> int:
    """Re-produce what is missing of a run and follow it to the end."""
    handle = api.resume(args.run_id, say=say)
    follow = argparse.Namespace(run_id=handle.id, timeout=args.timeout, output=args.output,
                                json=args.json)  # fmt: skip
    return wait(follow)


def abort(args: argparse.Namespace) -> int:
    api.abort(args.run_id)
    say(f"run {args.run_id}: aborting; claims not yet sent end 99 (reason aborted)")
    return EXIT_OK


def runs(args: argparse.Namespace) -> int:
    """The runs, newest first: id, input, state, claims terminal / total, created, last progress."""
    rows = [_run_row(info) for info in api.runs(args.limit)]
    console = Console()
    if not console.is_terminal:
        for row in rows:
            print(json.dumps(row))
        return EXIT_OK
    table = Table(show_edge=False)
    for column in ("run", "input", "state", "terminal", "created", "last progress"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(row["run_id"], row["input"], row["state"],
                      f"{row['terminal']} / {row['total'] or '?'}", row["created_at"],
                      row["updated_at"])  # fmt: skip
    console.print(table)
    return EXIT_OK


def _run_row(info: api.RunInfo) -> dict[str, Any]:
    data = info.as_dict()
    return {
        "run_id": info.run_id,
        "input": Path(info.inputs[0]).name if info.inputs else "",
        "state": info.state + (f" ({info.note})" if info.note else ""),
        "terminal": info.recorded,
        "total": info.total,
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
        "finished_at": data["finished_at"],
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


def claim(args: argparse.Namespace) -> int:
    """Every submission of one claim across runs, from the system of record."""
    get_settings().database_url_or_raise()
    submissions = history.history(context.database(), args.claim_id)
    if not submissions:
        say(f"no claim {args.claim_id} in the system of record")
        return EXIT_FAILED
    console = Console()
    if args.json:
        print(json.dumps({"claim_id": args.claim_id, "submissions": submissions}))
    elif console.is_terminal:
        history.table(console, args.claim_id, submissions)
    else:
        for line in history.tsv(submissions):
            print(line)
    return EXIT_OK


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def _require_fleet() -> None:
    settings = get_settings()
    settings.redis_url_or_raise()
    settings.database_url_or_raise()


def dlq(args: argparse.Namespace) -> int:
    get_settings().database_url_or_raise()
    which = _letter_filter(args)
    if args.dlq_command == "replay" and args.dry_run:
        return _dlq_preview(which)
    _require_fleet()
    if args.dlq_command == "list":
        return _dlq_list(args, which)
    settings = get_settings()
    stores = dead_letters.ReplayStores(context.runs(), context.database(), context.crosswalk(),
                                       vault(settings), settings)  # fmt: skip
    new_id, count = dead_letters.replay(stores, which, send_batch)
    if new_id is None:
        print("nothing replayable in the dead letters")
    else:
        print(f"replaying {count} claims as run {new_id}; follow it with `rxfleet wait {new_id}`")
    return EXIT_OK


def _letter_filter(args: argparse.Namespace) -> LetterFilter:
    """The dead letters ``--run``, ``--claim``, ``--code``, ``--reason`` name; a run that
    is not in the database is an error (exit 2), not an empty answer."""
    if args.run is not None and context.database().get_run(args.run) is None:
        raise ConfigError(f"no run {args.run} in the database")
    return LetterFilter(run_id=args.run, claim_id=args.claim, code=args.code, reason=args.reason)


def _dlq_preview(which: LetterFilter) -> int:
    """``dlq replay --dry-run``: the letters a replay would send; nothing is changed."""
    rows, others = dead_letters.preview(context.database(), which)
    _letters(rows)
    unfit = f"; {others} more match but cannot be replayed" if others else ""
    say(f"dry run: {len(rows)} claims would be replayed{unfit}; nothing was replayed")
    return EXIT_OK


def _dlq_list(args: argparse.Namespace, which: LetterFilter) -> int:
    rows, total = dead_letters.listing(context.database(), which, args.limit, args.offset)
    _letters(rows)
    shown = args.offset + len(rows)
    if shown < total:
        say(f"{total - shown} more; `--offset {shown}` shows the next")
    else:
        say(f"{total} in all")
    return EXIT_OK


def _letters(rows: list[dict[str, Any]]) -> None:
    """Dead letters: a table on a terminal, JSON lines in a pipe."""
    console = Console()
    if not console.is_terminal:
        for row in rows:
            print(json.dumps(row))
        return
    table = Table(show_edge=False)
    for column in ("run", "where", "claim", "field", "route", "codes", "reason", "at"):
        table.add_column(column, no_wrap=True, overflow="ignore")
    for row in rows:
        table.add_row(row["run_id"], f"{row['source']}:{row['line']}",
                      str(row["claim_id"] or "?"), row["field"] or "(the record)",
                      row["route"], " ".join(row["codes"] or []), row["reason"] or "",
                      str(row["created_at"]))  # fmt: skip
    console.print(table)


def db(args: argparse.Namespace) -> int:
    """``db upgrade``: migrate the database (workers also do on first use); ``db prune``."""
    settings = get_settings()
    settings.database_url_or_raise()
    database = context.database()  # migrated on first use
    if args.action == "upgrade":
        print(f"database schema version {database.schema_version()}")
        return EXIT_OK
    days = settings.retention_days
    deleted = database.prune(days, days)
    print(json.dumps({"retention_days": days, "deleted": deleted}))
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


def stats(args: argparse.Namespace) -> int:
    """The fleet's counters and gauges; with a run id, that run's counts too."""
    _require_fleet()
    data = api.stats(args.run_id)
    console = Console()
    if args.json or not console.is_terminal:
        print(json.dumps(data))
        return EXIT_OK
    claims = data["run"]["claims"] if args.run_id else data["claims"]
    rejects = data["run"]["reject_codes"] if args.run_id else data["reject_codes"]
    title = f"run {args.run_id}" if args.run_id else "the fleet, since its counters began"
    table = Table(title=title, show_edge=False, title_justify="left")
    for column in ("status", "route", "claims"):
        table.add_column(column, no_wrap=True, justify="right" if column == "claims" else "left")
    for row in claims:
        table.add_row(row["status"], row["route"], str(row["count"]))
    console.print(table)
    codes = Table(show_edge=False)
    codes.add_column("reject code", no_wrap=True)
    codes.add_column("claims", justify="right")
    for code, n in rejects.items():
        codes.add_row(code, str(n))
    console.print(codes)
    latency = data["gateway_latency"]
    mean = latency["sum_seconds"] / latency["count"] if latency["count"] else 0.0
    console.print(
        f"gateway requests {latency['count']} (mean {mean * 1000:.1f} ms), "
        f"retries {sum(data['submit_retries'].values())}, fleet pauses {data['fleet_pauses']}, "
        f"token fetches {data['token'].get('fetches', 0)}; breakers {data['breakers']}; "
        f"in flight {data['claims_in_flight']} in {data['active_runs']} runs; "
        f"queues {data['queue_depths']}",
        highlight=False,
    )
    _fleet_state(console, data)
    return EXIT_OK


def _fleet_state(console: Console, data: dict[str, Any]) -> None:
    """The pauses, the workers heard from, the oldest batch, the dead letters waiting."""
    hold = data["operator_pause"]
    if hold is not None:
        until = "`rxfleet unpause`" if hold["until"] is None else utc_clock(hold["until"])
        console.print(f"paused by an operator until {until}", highlight=False)
    if data["pause_seconds"] > 0:
        console.print(f"the gateway asked the fleet to wait {data['pause_seconds']:.0f} s more",
                      highlight=False)  # fmt: skip
    workers = ", ".join(f"{q} {n}" for q, n in sorted(data["workers"].items()))
    letters = sum(data["dead_letters_waiting"].values())
    console.print(f"workers heard from (10 s): {workers or 'none'}; oldest open batch "
                  f"{data['oldest_batch_age_seconds']:.0f} s since progress; dead letters "
                  f"waiting {letters}", highlight=False)  # fmt: skip


def pause(args: argparse.Namespace) -> int:
    """``rxfleet pause [--for D]``: every submit worker holds back until unpaused."""
    held = api.pause(args.duration)
    until = "`rxfleet unpause`" if held.until is None else utc_clock(held.until)
    say(f"paused: no submit worker sends from within a second, until {until}; "
        "requests in flight finish")  # fmt: skip
    return EXIT_OK


def unpause(args: argparse.Namespace) -> int:
    """``rxfleet unpause``: the operator's pause ends; a gateway-requested one runs its course."""
    was = api.unpause()
    gateway = context.pause().remaining()
    if was is None:
        say("not paused by an operator; nothing to end")
    else:
        say("unpaused: submit workers send again within a second")
    if gateway > 0:
        say(f"the gateway asked the fleet to wait: {gateway:.0f} s more (Retry-After)")
    return EXIT_OK


def metrics(args: argparse.Namespace) -> int:
    """The Prometheus exporter: one process for the fleet (Procfile ``metrics``)."""
    _require_fleet()
    say(f"metrics on http://{args.host}:{args.port}/metrics")
    serve(api.fleet_snapshot, args.host, args.port)
    return EXIT_OK


def keys(args: argparse.Namespace) -> int:
    """``rxfleet keys generate``: fresh settings lines, for an ``.env`` file or a secret store."""
    for line in generated_env():
        print(line)
    return EXIT_OK
