"""CPU a claim per link: ``python -m bench.link_cpu [--claims 10000] [--latency 0]``.

One Procfile fleet row as ``bench.scale`` runs it (one submit worker, the cpu worker
with 2 processes, the sandbox at ``--latency`` ms, warmed by a 20-claim run), with a
hook in every Celery worker process that adds up each task's thread CPU time from
``task_prerun`` to ``task_postrun``, by task name. The hook is a ``sitecustomize``
module put on the workers' ``PYTHONPATH`` (nothing in the fleet's code knows of it).

Prints, per link, the CPU milliseconds a claim (warm-up included: 20 claims), and
per process type as ``bench.scale`` does, each also in "sandbox units": divided by
the sandbox gateway's own CPU a claim in the same run, which does the same work
every time, so a machine whose speed drifts still compares with itself.

For the prefork cpu worker a task's thread time is its process's; for the threaded
submit worker it is the task's thread only (its aiohttp loop thread is not in it:
see the submit process's total).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.claimset import payable
from bench.sandbox import sandbox
from bench.scale import fleet_row

HOOK = """
import json, os, sys, time
_OUT = os.environ.get("BENCH_LINK_CPU_DIR")
if _OUT and "celery" in " ".join(sys.argv):
    from celery.signals import task_postrun, task_prerun
    _started, _totals = {}, {}

    def _pre(task_id=None, **_):
        _started[task_id] = time.thread_time()

    def _post(task_id=None, task=None, **_):
        began = _started.pop(task_id, None)
        if began is None or task is None:
            return
        count, seconds = _totals.get(task.name, (0, 0.0))
        _totals[task.name] = (count + 1, seconds + time.thread_time() - began)
        with open(os.path.join(_OUT, f"{os.getpid()}.json"), "w") as out:
            json.dump(_totals, out)

    task_prerun.connect(_pre, weak=False)
    task_postrun.connect(_post, weak=False)
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.0, help="sandbox latency, ms")
    return parser.parse_args()


def by_link(directory: Path) -> dict[str, tuple[int, float]]:
    """(tasks, CPU seconds) by task name, summed over every worker process's file."""
    totals: dict[str, tuple[int, float]] = {}
    for path in directory.glob("*.json"):
        for name, (count, seconds) in json.loads(path.read_text()).items():
            was = totals.get(name, (0, 0.0))
            totals[name] = (was[0] + count, was[1] + seconds)
    return totals


def report(links: dict[str, tuple[int, float]], row: dict[str, Any], claims: int) -> None:
    split = row["cpu_ms_per_claim"]
    unit = split.get("sandbox") or 1.0
    print(f"{row['claims_per_s']:.1f} claims/s; the sandbox: {unit:.3f} ms a claim (1 unit)")
    print(f"\n{'link (task)':<32} {'tasks':>6} {'ms a claim':>11} {'units':>7}")
    for name, (count, seconds) in sorted(links.items()):
        ms = 1000 * seconds / claims
        print(f"{name:<32} {count:>6} {ms:>11.3f} {ms / unit:>7.2f}")
    print(f"\n{'process type':<32} {'ms a claim':>18} {'units':>7}")
    for kind, ms in sorted(split.items()):
        print(f"{kind:<32} {ms:>18.3f} {ms / unit:>7.2f}")


def worker_hook(tmp: Path, code: str, variable: str) -> Path:
    """Put ``code`` on the workers' path as their ``sitecustomize`` (this process's
    children inherit ``PYTHONPATH``) and a folder for what it writes in ``variable``."""
    site, out = tmp / "site", tmp / "out"
    site.mkdir()
    out.mkdir()
    (site / "sitecustomize.py").write_text(code)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(site), os.environ.get("PYTHONPATH", "")) if p
    )
    os.environ[variable] = str(out)
    return out


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="rxfleet-link-cpu-") as tmp:
        out = worker_hook(Path(tmp), HOOK, "BENCH_LINK_CPU_DIR")
        with sandbox(args.latency, Path(tmp)) as box:
            row = fleet_row(box, payable(args.claims), 1, 2, Path(tmp))
        report(by_link(out), row, args.claims)
    return 0 if row["adjudicated_once"] == row["claims"] and not row["problems"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
