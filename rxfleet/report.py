"""What a person sees: a progress bar on a terminal, a summary table at the end."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from rxfleet.claims.rejects import Status
from rxfleet.stores.runs import RunStore

Tick = Callable[[int, int | None], None]


@dataclass
class Tally:
    """Counts gathered while results stream out to the file."""

    statuses: Counter[str] = field(default_factory=Counter)
    routes: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    quarantined: list[int] = field(default_factory=list)
    rows: int = 0

    def watch(
        self, rows: Iterator[dict[str, Any]], seqs: Iterator[int]
    ) -> Iterator[dict[str, Any]]:
        for row, seq in zip(rows, seqs, strict=False):
            self.rows += 1
            self.statuses[str(row["status"])] += 1
            self.routes[str(row["route"])] += 1
            self.severities[str(row["severity"])] += 1
            if row["status"] == Status.QUARANTINED and len(self.quarantined) < 10:
                self.quarantined.append(seq)
            yield row


def progress_bar(console: Console) -> tuple[AbstractContextManager[Any], Tick]:
    """A live bar on a terminal; a no-op elsewhere (CI logs stay clean)."""
    if not console.is_terminal:
        return nullcontext(), lambda done, total: None
    bar = Progress(
        TextColumn("claims"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("claims", total=None)

    def tick(done: int, total: int | None) -> None:
        bar.update(task, completed=done, total=total)

    return bar, tick


def wait_for(
    runs: RunStore, run_id: str, timeout: float | None, tick: Tick
) -> tuple[int, int | None]:
    """Poll until every claim of the run is recorded, or the timeout passes."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done, total = runs.progress(run_id)
        tick(done, total)
        if total is not None and done >= total:
            return done, total
        if deadline is not None and time.monotonic() >= deadline:
            return done, total
        time.sleep(0.1)


def summary(
    console: Console, run_id: str, tally: Tally, elapsed: float, where: Sequence[tuple[str, ...]]
) -> None:
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
    if where:
        _quarantined(console, where, tally.statuses.get(Status.QUARANTINED, 0))


def _quarantined(console: Console, where: Sequence[tuple[str, ...]], count: int) -> None:
    table = Table(title="quarantined, the first of them", show_edge=False, title_justify="left")
    for column in ("where", "claim", "field", "code"):
        table.add_column(column, overflow="fold")
    for row in where:
        table.add_row(*row)
    console.print(table)
    if count > len(where):
        console.print(
            f"... and {count - len(where)} more: each is in the results with its codes, "
            "and in `rxfleet dlq list` on a running fleet"
        )
