"""The CLI commands' bodies: each takes the parsed arguments and returns an exit code.

These sit at the top of the layers: they compose the producer, the stores, the
system of record, the Celery wiring (chains are sent through
``workers.pipeline``) and, with no Redis configured, the embedded fleet
(``rxfleet.embedded`` plus ``workers.inprocess``).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from config import Settings, get_settings
from rxfleet import api, context, history, lifecycle
from rxfleet import dlq as dead_letters
from rxfleet.claims.rejects import Reason
from rxfleet.claims.text import shown
from rxfleet.embedded import embedded_services
from rxfleet.errors import ConfigError, RunTimeout
from rxfleet.gateway.sandbox.server import run_gateway
from rxfleet.lifecycle import Waiter
from rxfleet.metrics import serve
from rxfleet.output import STDOUT, check_output, create_private, write_results
from rxfleet.phikeys import generated_env, vault
from rxfleet.producer import ProduceResult
from rxfleet.report import (
    HoldWatch,
    Tally,
    WorkerWatch,
    cells,
    progress_bar,
    quarantine_tsv,
    quarantined,
    show,
    summary,
    summary_dict,
    summary_tsv,
    utc_clock,
)
from rxfleet.stores.database import Database, LetterFilter
from workers import app as app_module
from workers.inprocess import beat_thread, worker_thread
from workers.pipeline import send_batch

EXIT_OK, EXIT_FAILED = 0, 1
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C
EMBEDDED_CONCURRENCY = 4


def say(line: str) -> None:
    """One line for the operator, on stderr."""
    print(f"rxfleet: {shown(line)}", file=sys.stderr, flush=True)


def ride_outages() -> None:
    """A command waits up to ``RXFLEET_DATABASE_OUTAGE`` s for PostgreSQL, and says once
    that it is away and once that it is back."""
    context.ride_database_outages(get_settings().database_outage, say)


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


def _worker_watch(embedded: bool) -> contextlib.AbstractContextManager[object]:
    """Names a queue no worker consumes (the embedded fleet is its own workers)."""
    settings = get_settings()
    queues = [settings.queue_cpu, settings.queue_gateway]
    return contextlib.nullcontext() if embedded else WorkerWatch(_served_queues, queues, say)


def _follow(
    console: Console, run_id: str, timeout: float | None, embedded: bool, watch: bool = True
) -> lifecycle.Progress:
    settings = get_settings()

    def recover() -> None:  # Redis came back empty: what `rxfleet resume` does, done here
        api.resume(run_id, say=say)

    waiter = Waiter(lambda: lifecycle.progress(context.runs(), context.database(), run_id),
                    say, outage=settings.redis_outage,
                    recover=None if embedded else recover)  # fmt: skip
    workers = _worker_watch(embedded or not watch)
    held = HoldWatch(context.pause().held, say)
    bar, tick = progress_bar(console, _waiting_on, every=settings.progress_interval, say=say)
    with workers, held, bar:
        return waiter.wait(timeout, tick)


def _waiting_on() -> str | None:
    """What holds the fleet back now: a fleet pause, an open breaker, the gateway rate."""
    paused = context.pause().remaining()
    held = []
    if paused > 0:
        until = time.strftime("%H:%M:%S", time.gmtime(time.time() + paused))
        held.append(f"fleet paused until {until} UTC ({paused:.0f} s: the gateway's "
                    "Retry-After or an operator's pause)")  # fmt: skip
    for breaker in (context.health_breaker(), context.auth_breaker()):
        state = breaker.state()
        if state != "closed":
            held.append(f"{breaker.name} breaker {state}")
    rate = context.gateway_rate()
    if rate is not None:
        held.append(f"sent at the fleet's gateway rate, {rate:g} claims/s at most")
    return "; ".join(held) or None


def _finish(console: Console, run_id: str, output: str | None, elapsed: float,
            embedded: bool, as_json: bool = False) -> int:  # fmt: skip
    """Results to ``output``; the summary: JSON (--json), TSV in a pipe, tables on a
    terminal. Exit 1 when the run was aborted (its open claims ended 99, replayable)."""
    db = context.database()
    tally = Tally()
    rows = tally.watch(db.results(run_id))
    if output:
        write_results(output, rows)
    else:
        for _ in rows:
            pass
    elapsed = _run_seconds(db.get_run(run_id)) or elapsed
    count = tally.statuses.get("QUARANTINED", 0)
    firsts = dead_letters.first_quarantined(db, run_id) if count else []
    aborted = tally.reasons.get(Reason.ABORTED, 0)
    if as_json:
        print(json.dumps(summary_dict(run_id, tally, elapsed, output, firsts)), flush=True)
    elif not console.is_terminal:
        for line in summary_tsv(run_id, tally, elapsed, output, firsts):
            print(line)
    else:
        _summary_tables(console, run_id, tally, elapsed, output, firsts, embedded)
    if aborted:
        say(f"run {run_id} was aborted: {aborted} claims ended 99 unsent (reason ABORTED); "
            f"`rxfleet dlq replay --run {run_id} --reason ABORTED` sends them again")  # fmt: skip
        return EXIT_FAILED
    return EXIT_OK


def _summary_tables(console: Console, run_id: str, tally: Tally, elapsed: float,
                    output: str | None, firsts: list[dict[str, Any]],
                    embedded: bool) -> None:  # fmt: skip
    summary(console, run_id, tally, elapsed)
    count = tally.statuses.get("QUARANTINED", 0)
    if count:
        hint = "in `rxfleet dlq list`" if not embedded else "in the results file"
        quarantined(console, firsts, count, hint)
    if output:
        console.print(Text(f"results: {shown(output)}"))


def _run_seconds(row: dict[str, Any] | None) -> float | None:
    """The run's own time, created to finished (a ``wait`` that came late does not make
    a run look fast); None while it has no finish time."""
    if row is None or row.get("finished_at") is None or row.get("created_at") is None:
        return None
    seconds: float = (row["finished_at"] - row["created_at"]).total_seconds()
    return max(seconds, 0.001)


def _unfinished(run_id: str, progress: lifecycle.Progress, embedded: bool) -> int:
    hint = (
        "the embedded fleet stops with this process; rerun with a larger --timeout"
        if embedded
        else f"`rxfleet wait {run_id}` and `rxfleet results {run_id}` pick it up again"
    )
    done, total = progress.done, progress.total
    raise RunTimeout(f"run {run_id}: {done} of {total or '?'} claims terminal at timeout; {hint}")


def _interrupted(
    run_id: str | None, output: str | None, embedded: bool, producing: bool = False
) -> int:
    """Ctrl-C: one true line naming what finishes the run (and, embedded, the partial
    results where asked). Stopped while ``producing``, only a resume enqueues the rest."""
    if run_id is None:
        say("interrupted before the run started; nothing was enqueued")
        return EXIT_INTERRUPTED
    progress = lifecycle.progress(context.runs(), context.database(), run_id)
    where = ""
    if embedded and output:
        write_results(output, context.database().results(run_id))
        where = f"; the {progress.done} finished are in {output}"
    after = f"`rxfleet wait {run_id}` follows it"
    if producing:
        after = f"its input was not all enqueued: `rxfleet resume {run_id}` finishes it"
    if embedded:
        after = "the embedded fleet stopped with it"
    say(f"interrupted: run {run_id} has {progress.done} of {progress.total or '?'} claims "
        f"terminal{where}; {after}")  # fmt: skip
    return EXIT_INTERRUPTED


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
    producing = False
    with fleet_for_run() as embedded:
        try:
            started = time.monotonic()
            plan = api.open_plan(args.inputs, batch_size, new=args.new, say=say)
            run_id, producing = plan.run_id, True
            with _worker_watch(embedded):  # while producing too: a full window waits on them
                produced = api.produce(plan, args.inputs, say=say)
                producing = False
                progress = _follow(console, run_id, args.timeout, embedded, watch=False)
            if not progress.finished:
                return _unfinished(run_id, progress, embedded)
            code = _finish(console, run_id, args.output, time.monotonic() - started, embedded,
                           args.json)  # fmt: skip
        except KeyboardInterrupt:
            return _interrupted(run_id, args.output, embedded, producing)
    # An input that could not be read to its end: what was read is finished and
    # exported, and the exit says the input was not all processed.
    return EXIT_FAILED if produced is not None and produced.cut_short else code


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
    return _finish(console, args.run_id, args.output, time.monotonic() - started, False, as_json)


def resume(args: argparse.Namespace) -> int:
    """Re-produce what is missing of a run and follow it to the end."""
    try:
        handle = api.resume(args.run_id, say=say)
    except KeyboardInterrupt:
        return _interrupted(args.run_id, None, embedded=False, producing=True)
    follow = argparse.Namespace(run_id=handle.id, timeout=args.timeout, output=args.output,
                                json=args.json)  # fmt: skip
    return wait(follow)


def abort(args: argparse.Namespace) -> int:
    """Stop a run; an unknown run id is an error (exit 2), a finished run is said so."""
    if not api.abort(args.run_id):
        say(f"run {args.run_id} has already finished: nothing to abort")
        return EXIT_OK
    say(f"run {args.run_id}: aborting; claims not yet sent end 99 (reason ABORTED); "
        f"`rxfleet dlq replay --run {args.run_id} --reason ABORTED` sends them later")  # fmt: skip
    return EXIT_OK


def runs(args: argparse.Namespace) -> int:
    """The runs, newest first: id, input, state, claims terminal / total, created, last progress."""
    rows = [_run_row(info) for info in api.runs(args.limit)]
    console = Console()
    if args.json:
        print(json.dumps({"runs": rows}))
        return EXIT_OK
    if not console.is_terminal:
        for row in rows:
            print(json.dumps(row))
        return EXIT_OK
    table = Table(show_edge=False)
    for column in ("run", "input", "state", "terminal", "created", "last progress"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*cells(row["run_id"], row["input"], row["state"],
                             f"{row['terminal']} / {row['total'] or '?'}",
                             _when(row["created_at"]), _when(row["updated_at"])))  # fmt: skip
    show(console, table)
    return EXIT_OK


def _when(iso: str | None) -> str:
    """An ISO time as a person reads it in a table: to the second, UTC."""
    return (iso or "")[:19].replace("T", " ")


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
    where = "stdout" if args.output == STDOUT else shown(args.output)
    line = f"{count} results written to {where} ({count} of {total or '?'} claims terminal)"
    if args.output == STDOUT:
        say(line)  # stdout holds the results only
    else:
        print(line)
    return EXIT_OK if total is not None and count >= total else EXIT_FAILED


def audit(args: argparse.Namespace) -> int:
    """Each claim's path through the stages, from the system of record: a table on a
    terminal, JSON lines in a pipe or a file. A ``--claim`` the run lacks: exit 1."""
    if args.run_id == "verify":
        return _verify(args.verify_run)
    _require_fleet()
    db = context.database()
    if db.get_run(args.run_id) is None:
        raise ConfigError(f"no run {args.run_id} in the database")
    found = ({k: _plain(v) for k, v in e.items() if k != "id"}
             for e in db.audit(args.run_id, args.claim))  # fmt: skip
    first = next(found, None)
    if first is None:
        what = f"claim {args.claim} in run {args.run_id}" if args.claim else f"run {args.run_id}"
        say(f"no audit events for {what}")
        return EXIT_FAILED
    events = itertools.chain([first], found)
    if args.output:
        create_private(Path(args.output))
    console = Console()
    if args.output is None and console.is_terminal:
        _audit_table(console, events)
        return EXIT_OK
    handle = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout  # noqa: SIM115
    try:
        for event in events:
            handle.write(json.dumps(event) + "\n")
    finally:
        if args.output:
            handle.close()
    return EXIT_OK


def _verify(run_id: str | None) -> int:
    """One line per run: intact (events, head hash), or the first event that does not fit."""
    get_settings().database_url_or_raise()
    db = context.database()
    runs = [run_id] if run_id else db.chained_runs()
    if run_id and db.get_run(run_id) is None and run_id not in db.chained_runs():
        raise ConfigError(f"no run {run_id} in the database")
    broken = 0
    for run in runs:
        check = db.verify(run)
        print(check.line())
        broken += not check.intact
    say(f"{len(runs) - broken} of {len(runs)} runs intact"
        + (f", {broken} BROKEN" if broken else ""))  # fmt: skip
    return EXIT_FAILED if broken else EXIT_OK


AUDIT_COLUMNS = ("seq", "claim_id", "stage", "outcome", "codes", "attempt", "at")


def _audit_table(console: Console, events: Iterator[dict[str, Any]]) -> None:
    table = Table(show_edge=False)
    for column in AUDIT_COLUMNS:
        table.add_column(column, no_wrap=True)
    for event in events:
        codes = " ".join(event.get("codes") or [])
        table.add_row(*(codes if c == "codes" else _when(event.get(c)) if c == "at"
                        else str(event.get(c) if event.get(c) is not None else "")
                        for c in AUDIT_COLUMNS))  # fmt: skip
    show(console, table)


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


def _plain_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in row.items()}


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
        table.add_column(column, no_wrap=True)
    for row in rows:
        table.add_row(*cells(row["run_id"], f"{row['source']}:{row['line']}",
                             str(row["claim_id"] or "?"), row["field"] or "(the record)",
                             row["route"], " ".join(row["codes"] or []), row["reason"] or "",
                             _when(str(row["created_at"]))))  # fmt: skip
    show(console, table)


def db(args: argparse.Namespace) -> int:
    """``db upgrade``: migrate, set retention and grant, as the owner (the fleet's role
    gets least privilege; each grant is printed); ``db prune``: retention, as the owner."""
    settings = get_settings()
    settings.database_url_or_raise()
    if args.action == "upgrade":
        applied, secured = context.secure(settings)
        for warning in secured.warnings:
            say(f"warning: {warning}")
        for line in secured.done:
            print(line)
        version = max(applied, default=0) or context.database().schema_version()
        print(f"database schema version {version}")
        return EXIT_OK
    days = settings.retention_days
    with _owner_database(settings) as owner:
        deleted = owner.prune(days, days)
    print(json.dumps({"retention_days": days, "deleted": deleted}))
    return EXIT_OK


def _owner_database(settings: Settings) -> Database:
    """The owner's handle when its URL is set (retention), else the fleet's."""
    if settings.database_owner_url is None:
        return context.database()
    context.database()  # migrated and granted first
    return Database(settings.database_owner_url.get_secret_value())


def gateway(args: argparse.Namespace) -> int:
    run_gateway(args.host, args.port, Path(args.scenario) if args.scenario else None)
    return EXIT_OK


def token(args: argparse.Namespace) -> int:
    """The token's state, TTL and rotation counters, and the gateway's health: never the token."""
    get_settings().redis_url_or_raise()
    store = context.token_info()
    current = store.info()
    state: dict[str, Any] = {"state": "missing"}
    if current is not None:
        state = {
            "state": "valid",
            "ttl_seconds": round(current.ttl(), 1),
            "version": current.version,
        }
    state["counters"] = store.stats()
    if get_settings().database_url:
        state["rotations"] = [_plain_row(r) for r in context.database().token_rotations(5)]
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
    console.print(_fleet_line(data), highlight=False)
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


def _fleet_line(data: dict[str, Any]) -> str:
    """The gauges and gateway counters in words (never a Python dict)."""
    latency = data["gateway_latency"]
    mean = latency["sum_seconds"] / latency["count"] if latency["count"] else 0.0
    breakers = ", ".join(f"{name} {state}" for name, state in sorted(data["breakers"].items()))
    depths = data["queue_depths"]
    queues = ", ".join(f"{q} {n}" for q, n in sorted(depths.items())) if depths else "unknown"
    ttl = data["token"].get("ttl_seconds")
    return "\n".join([
        f"gateway requests {latency['count']} (mean {mean * 1000:.1f} ms), retries "
        f"{sum(data['submit_retries'].values())}, fleet pauses {data['fleet_pauses']}",
        f"token: fetches {data['token'].get('fetches', 0)}, "
        + (f"{ttl:.0f} s left" if ttl is not None else "none stored"),
        f"breakers: {breakers or 'none'}; fleet pause {data['pause_seconds']:.0f} s",
        f"in flight: {data['claims_in_flight']} claims in {data['active_runs']} runs; "
        f"queued messages: {queues}",
    ])  # fmt: skip


def metrics(args: argparse.Namespace) -> int:
    """The Prometheus exporter: one process for the fleet (Procfile ``metrics``); it reads
    Redis only: no database, no PHI key."""
    get_settings().redis_url_or_raise()
    say(f"metrics on http://{args.host}:{args.port}/metrics")
    serve(api.fleet_snapshot, args.host, args.port)
    return EXIT_OK


def sync(args: argparse.Namespace) -> int:
    """The payer-portal sync: pull, enqueue, acknowledge, until SIGTERM (``--drain``: until
    the portal has nothing pending and every claim pulled is acknowledged)."""
    settings = get_settings()
    _require_fleet()
    if not settings.portal_url and not args.drain:
        say("RXFLEET_PORTAL_URL is not set: no payer portal to sync; idle")
        stopping = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
        signal.sigwait(stopping)
        return EXIT_OK
    syncing = api.portal_sync(say)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    say(f"syncing {settings.portal_url} (portal {syncing.portal})")
    try:
        syncing.run_until(stop, drain=args.drain)
    except KeyboardInterrupt:
        syncing.release()
        say("interrupted: the claims pulled go on; a sync started again picks up from there")
        return EXIT_FAILED
    say("portal drained: nothing pending, every claim pulled acknowledged" if args.drain
        else "stopped")  # fmt: skip
    return EXIT_OK


def webhooks(args: argparse.Namespace) -> int:
    """The formulary webhook receiver (Procfile ``webhooks``): refuses to start without
    ``RXFLEET_WEBHOOK_SECRET``, Redis and the database."""
    from rxfleet.webhooks import PATH, Publisher, Receiver, serve  # aiohttp.web: only here

    settings = get_settings()
    secret = settings.webhook_secret_or_raise()
    _require_fleet()
    publisher = Publisher(context.database(), context.formulary(), context.metrics(),
                          settings.formulary_gap_seconds)  # fmt: skip
    version = publisher.sync()
    say(f"webhooks on http://{args.host}:{args.port}{PATH} (formulary version {version})")
    serve(Receiver(publisher, secret, time.time), settings.webhook_max_body,
          args.host, args.port)  # fmt: skip
    return EXIT_OK


def keys(args: argparse.Namespace) -> int:
    """``rxfleet keys generate``: fresh settings lines, for an ``.env`` file or a secret store."""
    for line in generated_env():
        print(line)
    return EXIT_OK
