"""What a person sees: a progress bar on a terminal, a word when a queue has no
worker, and the summary at the end (tables, JSON or TSV). Following a run, Redis
outages included, is ``lifecycle.Waiter``'s; this module only shows it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from rxfleet.claims.rejects import Reason, Status
from rxfleet.claims.text import shown
from rxfleet.lifecycle import Say, Tick
from rxfleet.stores.pause import Hold

#: Reasons that mean the gateway could not be reached (the fleet gave up, replayable).
TRANSPORT_REASONS = {Reason.RETRIES_EXHAUSTED}


@dataclass
class Tally:
    """Counts gathered while results stream out to the file."""

    statuses: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    rows: int = 0

    def watch(self, rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for row in rows:
            self.rows += 1
            self.statuses[str(row["status"])] += 1
            self.routes[str(row["route"])] += 1
            if row.get("reason"):
                self.reasons[str(row["reason"])] += 1
            yield row


@dataclass
class Pace:
    """Claims a second over the last ``window`` seconds, and the time left at that rate."""

    window: float = 30.0
    seen: deque[tuple[float, int]] = field(default_factory=deque)

    def update(self, done: int, now: float) -> None:
        self.seen.append((now, done))
        while len(self.seen) > 2 and now - self.seen[1][0] >= self.window:
            self.seen.popleft()

    def rate(self) -> float | None:
        if len(self.seen) < 2 or self.seen[-1][0] - self.seen[0][0] < 1.0:
            return None
        (t0, d0), (t1, d1) = self.seen[0], self.seen[-1]
        return (d1 - d0) / (t1 - t0)

    def text(self, done: int, total: int | None) -> str:
        rate = self.rate()
        if rate is None:
            return "measuring the rate"
        if rate <= 0:
            return "0 claims/s"
        left = f", about {_duration((total - done) / rate)} left" if total else ""
        return f"{rate:.0f} claims/s{left}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


#: What the fleet is waiting on now (a pause, an open breaker), or None: read at most
#: once a second by the progress display.
Note = Callable[[], str | None]


def progress_bar(
    console: Console, note: Note = lambda: None, *, every: float = 10.0, say: Say | None = None
) -> tuple[AbstractContextManager[Any], Tick]:
    """On a terminal, a live bar with the rate, the time left and what the fleet waits
    on; elsewhere (a pipe, cron), one line every ``every`` seconds through ``say``."""
    pace, noted = Pace(), _Throttled(note, 1.0)
    if not console.is_terminal:
        return nullcontext(), _periodic_lines(pace, noted, every, say)
    bar = Progress(
        TextColumn("claims"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
        console=console,
        transient=True,
    )
    task = bar.add_task("claims", total=None, detail="")

    def tick(done: int, total: int | None) -> None:
        pace.update(done, time.monotonic())
        bar.update(task, completed=done, total=total, detail=_detail(pace, done, total, noted()))

    return bar, tick


def _detail(pace: Pace, done: int, total: int | None, waiting: str | None) -> str:
    return pace.text(done, total) + (f"; {waiting}" if waiting else "")


def _periodic_lines(pace: Pace, noted: _Throttled, every: float, say: Say | None) -> Tick:
    last = [time.monotonic()]

    def tick(done: int, total: int | None) -> None:
        now = time.monotonic()
        pace.update(done, now)
        if say is None or now - last[0] < every:
            return
        last[0] = now
        say(f"{done} of {total if total is not None else '?'} claims terminal, "
            + _detail(pace, done, total, noted()))  # fmt: skip

    return tick


@dataclass
class _Throttled:
    """``read`` at most once every ``every`` seconds; the last answer in between."""

    read: Note
    every: float
    _at: float = -1e9
    _last: str | None = None

    def __call__(self) -> str | None:
        now = time.monotonic()
        if now - self._at >= self.every:
            self._at = now
            with contextlib.suppress(Exception):  # Redis away: the Waiter says so
                self._last = self.read()
        return self._last


@dataclass
class WorkerWatch:
    """Whether workers consume each queue, asked in the background (Celery's ping)."""

    ask: Callable[[], set[str]]  # the queues some worker consumes now
    queues: Sequence[str]
    say: Say
    patience: float = 3.0  # asked every second (the ask included): named ~4 s after the start
    every: float = 1.0
    _missing: dict[str, float] = field(default_factory=dict)
    _told: set[str] = field(default_factory=set)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> WorkerWatch:
        threading.Thread(target=self._loop, name="rxfleet-worker-watch", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            asked = time.monotonic()  # a queue is missing since it was asked about, not answered
            with contextlib.suppress(Exception):  # a broker hiccup: the Redis watch reports it
                self.check(self.ask(), asked)
            self._stop.wait(max(0.0, self.every - (time.monotonic() - asked)))

    def check(self, served: set[str], now: float) -> None:
        for queue in self.queues:
            if queue in served:
                if queue in self._told:
                    self.say(f"a worker consumes queue {queue} again")
                self._missing.pop(queue, None)
                self._told.discard(queue)
                continue
            since = self._missing.setdefault(queue, now)
            if now - since >= self.patience and queue not in self._told:
                self._told.add(queue)
                self.say(f"no worker consumes queue {queue}: the run waits until one does")


@dataclass
class HoldWatch:
    """Says, while a run is followed, when an operator pauses the fleet and when it resumes."""

    read: Callable[[], Hold | None]  # the operator's pause now
    say: Say
    every: float = 1.0
    _told: Hold | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> HoldWatch:
        threading.Thread(target=self._loop, name="rxfleet-hold-watch", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):  # Redis away: the Waiter reports it
                self.check(self.read())
            self._stop.wait(self.every)

    def check(self, held: Hold | None) -> None:
        if held == self._told:
            return
        if held is None:
            self.say("unpaused: claims are sent again")
        else:
            until = "`rxfleet unpause`" if held.until is None else utc_clock(held.until)
            self.say(f"paused by an operator until {until}: no claims are sent meanwhile")
        self._told = held


def utc_clock(epoch: float) -> str:
    """An instant as an operator reads it: ``2026-12-04 19:05:00 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def summary(console: Console, run_id: str, tally: Tally, elapsed: float) -> None:
    table = Table(show_edge=False)
    table.add_column("status")
    table.add_column("claims", justify="right")
    for status in Status:
        table.add_row(status, str(tally.statuses.get(status, 0)))
    table.add_row("total", str(tally.rows), style="bold")
    console.print(table)
    routes = Table(show_edge=False)
    routes.add_column("route")
    routes.add_column("claims", justify="right")
    for route, count in tally.routes.most_common():
        routes.add_row(route, str(count))
    console.print(routes)
    rate = tally.rows / elapsed if elapsed > 0 else 0.0
    console.print(f"{tally.rows} claims in {elapsed:.2f} s ({rate:.0f} claims/s)")
    transport = sum(tally.reasons[r] for r in TRANSPORT_REASONS)
    if transport:
        console.print(
            f"{transport} claims ended 99 because the gateway could not be reached; "
            f"`rxfleet dlq replay --run {run_id}` sends them again",
            highlight=False,
        )


def show(console: Console, table: Table) -> None:
    """A table at its natural width, however narrow the terminal: ids (run ids, claim
    ids) are never cut or folded; a line longer than the terminal wraps there."""
    natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
    terminal = console.width
    console.width = max(natural, terminal)
    try:
        console.print(table, crop=False)
    finally:
        console.width = terminal


def quarantined(console: Console, rows: Sequence[dict[str, Any]], count: int, hint: str) -> None:
    """The first quarantined claims: where, claim, field, code."""
    table = Table(title="quarantined, the first of them (input order)", show_edge=False,
                  title_justify="left")  # fmt: skip
    for column in ("where", "claim", "field", "code"):
        table.add_column(column, no_wrap=True)
    for row in rows:
        codes = row.get("codes") or [""]
        where = f"{row.get('source')}:{row.get('line')}"
        table.add_row(*cells(where, str(row.get("claim_id") or "?"),
                             row.get("field") or "(the record)", codes[0]))  # fmt: skip
    show(console, table)
    if count > len(rows):
        console.print(f"... and {count - len(rows)} more: each is in the results with its codes, "
                      f"and {hint}")  # fmt: skip


def cells(*values: Any) -> list[Text]:
    """Table cells of ``values``: :func:`shown` (no control character reaches the
    terminal) and plain text (a ``[`` in a value is not rich markup)."""
    return [Text(shown(value)) for value in values]


def summary_dict(run_id: str, tally: Tally, elapsed: float, output: str | None,
                 firsts: Sequence[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """The run's summary, machine-readable (``--json``)."""
    return {
        "run_id": run_id,
        "total": tally.rows,
        "counts": {
            "status": {str(s): tally.statuses.get(s, 0) for s in Status},
            "route": dict(tally.routes.most_common()),
        },
        "elapsed_seconds": round(elapsed, 3),
        "claims_per_second": round(tally.rows / elapsed, 1) if elapsed > 0 else 0.0,
        "output": output,
        "transport_failures": sum(tally.reasons[r] for r in TRANSPORT_REASONS),
        "first_quarantined": [
            {k: row.get(k) for k in ("source", "line", "claim_id", "field", "codes")}
            for row in firsts
        ],
    }


def summary_tsv(run_id: str, tally: Tally, elapsed: float, output: str | None,
                firsts: Sequence[dict[str, Any]]) -> Iterator[str]:  # fmt: skip
    """The run's summary for a pipe: tab-separated lines, the first field says what."""
    data = summary_dict(run_id, tally, elapsed, output, firsts)
    yield f"run_id\t{run_id}"
    for status, count in data["counts"]["status"].items():
        yield f"status\t{status}\t{count}"
    for route, count in data["counts"]["route"].items():
        yield f"route\t{route}\t{count}"
    yield f"total\t{tally.rows}"
    yield f"elapsed_seconds\t{data['elapsed_seconds']}"
    yield f"claims_per_second\t{data['claims_per_second']}"
    if data["transport_failures"]:
        yield f"transport_failures\t{data['transport_failures']}"
    for row in firsts:
        yield quarantine_tsv(row)
    if output:
        yield f"output\t{shown(output)}"


def quarantine_tsv(row: dict[str, Any]) -> str:
    """``quarantined``, where, claim, field, codes (space-separated): one line."""
    codes = " ".join(str(c) for c in row.get("codes") or [])
    where = f"{row.get('source')}:{row.get('line')}"
    fields = (where, row.get("claim_id") or "?", row.get("field") or "", codes)
    return "quarantined\t" + "\t".join(shown(value) for value in fields)
