"""One run, half second by half second: ``python -m bench.timeline [--claims 6000]
[--latency 200] [--step 0.5]``.

One Procfile fleet row as ``bench.scale`` runs it (one submit worker, the cpu worker
with 2 processes, the sandbox at ``--latency`` ms, warmed by a 20-claim run), timed
through ``rxfleet run``. Afterwards, from three sources:

* the sandbox's own log: every claim request's start and end, so each step shows
  the requests started, answered and held by the gateway at its middle;
* the fleet's in-flight limit (``{prefix}:gateway:inflight``), read from Redis every
  0.1 s while the run goes on;
* each link's start and end, batch by batch, written by a hook in every Celery
  worker process (a ``sitecustomize`` module put on the workers' ``PYTHONPATH``, as
  ``bench.link_cpu`` does; nothing in the fleet's code knows of it).

Times are seconds from the moment ``rxfleet run`` was started.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from bench.claimset import payable
from bench.fleetrun import run_cli, warm_up
from bench.harness import procfile_fleet
from bench.link_cpu import worker_hook
from bench.sandbox import sandbox
from rxfleet.stores.inflight import limit_key

HOOK = """
import os, sys, time
_OUT = os.environ.get("BENCH_TIMELINE_DIR")
if _OUT and "celery" in " ".join(sys.argv):
    from celery.signals import task_postrun, task_prerun
    _started = {}

    def _pre(task_id=None, **_):
        _started[task_id] = time.time()

    def _post(task_id=None, task=None, args=None, **_):
        began = _started.pop(task_id, None)
        if began is None or task is None or not args or len(args) < 2:
            return
        with open(os.path.join(_OUT, f"{os.getpid()}.txt"), "a") as out:
            out.write(f"{task.name} {args[1]} {began:.3f} {time.time():.3f}\\n")

    task_prerun.connect(_pre, weak=False)
    task_postrun.connect(_post, weak=False)
"""
PREFIX = "tl-"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=6_000)
    parser.add_argument("--latency", type=float, default=200.0, help="sandbox latency, ms")
    parser.add_argument("--step", type=float, default=0.5, help="seconds a line")
    return parser.parse_args()


@contextmanager
def limit_sampler(url: str, prefix: str) -> Iterator[list[tuple[float, str]]]:
    """(epoch, limit) every 0.1 s while the block runs."""
    client = redis.Redis.from_url(url, decode_responses=True)
    samples: list[tuple[float, str]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.time(), str(client.hget(limit_key(prefix), "limit") or "-")))
            stop.wait(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join()


def timed_run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    claims = payable(args.claims)
    with sandbox(args.latency, tmp) as box:
        source, out = tmp / "input.jsonl", tmp / "results.jsonl"
        claims.write_jsonl(source, PREFIX)
        box.reset()
        with procfile_fleet(gateway_url=box.url, submit_workers=1,
                            extra_env={"RXFLEET_CPU_CONCURRENCY": "2"}) as fleet:  # fmt: skip
            warm_up(fleet.env, claims, tmp, None)
            env = fleet.env
            with limit_sampler(
                env["RXFLEET_REDIS_URL"], env.get("RXFLEET_KEY_PREFIX", "rx")
            ) as limits:
                started = time.time()
                seconds, _ = run_cli(fleet.env, source, out, None)
        log = [e for e in box.stats()["log"] if str(e.get("key") or "").startswith(PREFIX)]
    return {"started": started, "seconds": seconds, "log": log, "limits": limits}


def links_of(directory: Path, started: float) -> list[tuple[float, float, str, int]]:
    """(start, end, link, batch) of every task that began after ``started``."""
    rows = []
    for path in directory.glob("*.txt"):
        for line in path.read_text().splitlines():
            name, batch, began, ended = line.split()
            if float(began) >= started:
                rows.append((float(began) - started, float(ended) - started,
                             name.rsplit(".", 1)[-1], int(batch)))  # fmt: skip
    return sorted(rows)


def print_steps(run: dict[str, Any], step: float) -> None:
    t0, log = run["started"], run["log"]
    print(f"{len(log)} claim requests; run {run['seconds']:.2f} s, "
          f"{len(log) / run['seconds']:.0f} a second")  # fmt: skip
    print(f"\n{'at s':>6} {'started':>8} {'answered':>9} {'at gateway':>11} {'limit':>7}")
    for i in range(int(run["seconds"] / step) + 1):
        low, high, mid = t0 + i * step, t0 + (i + 1) * step, t0 + (i + 0.5) * step
        began = sum(1 for e in log if low <= e["started"] < high)
        ended = sum(1 for e in log if low <= e["finished"] < high)
        held = sum(1 for e in log if e["started"] <= mid < e["finished"])
        limit = next((v for at, v in reversed(run["limits"]) if at <= mid), "-")
        shown = limit if limit == "-" else f"{float(limit):.0f}"
        print(f"{i * step:>6.1f} {began:>8} {ended:>9} {held:>11} {shown:>7}")


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="rxfleet-timeline-") as name:
        tmp = Path(name)
        out = worker_hook(tmp, HOOK, "BENCH_TIMELINE_DIR")
        run = timed_run(args, tmp)
        print_steps(run, args.step)
        print(f"\n{'link':<10} {'batch':>6} {'start':>7} {'end':>7}")
        for began, ended, link, batch in links_of(out, run["started"]):
            print(f"{link:<10} {batch:>6} {began:>7.2f} {ended:>7.2f}")
    return 0 if len(run["log"]) >= args.claims else 1


if __name__ == "__main__":
    raise SystemExit(main())
