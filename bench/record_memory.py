"""Redis is working memory, PostgreSQL the system of record: what each holds after a run.

    python -m bench.record_memory [--claims 100000] [--out bench/out/record_memory.json]

Starts the Procfile's processes (cpu, submit, beat, gateway) on a private
redis-server and PostgreSQL, warms them with a 20-claim run, reads Redis
``used_memory`` (the baseline), runs ``rxfleet run`` on N synthetic claims (the
sample mix: paid, rejected, quarantined), and then reads:

* Redis ``used_memory`` again, and the difference per claim;
* the rows the database holds for the run: results, audit events, dead letters;
* CPU seconds of every process of the fleet during the run (psutil), and the
  share of them spent by the PostgreSQL server: the cost of the system of
  record, next to the fleet's own work;
* CPU milliseconds a claim per process type (submit, cpu, beat, sandbox,
  PostgreSQL, Redis, and the ``rxfleet run`` process itself).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import redis

from bench.harness import ROOT, procfile_fleet
from rxfleet.claims import synth

MB = 1024 * 1024


def write_claims(path: Path, n: int, prefix: str) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for item in synth.sample_claims(n, seed=len(prefix)):
            if isinstance(item, dict):
                item = json.dumps({**item, "claim_id": prefix + str(item["claim_id"])})
            handle.write(item + "\n")


def cpu_seconds() -> dict[int, tuple[str, float]]:
    out = {}
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            times = proc.cpu_times()
            out[proc.pid] = (" ".join(proc.info["cmdline"] or []), times.user + times.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return out


#: Which process type a command line is (first match wins); the rest is "other".
KINDS = (
    ("submit", "-Q rxfleet.gateway"),
    ("cpu", "-Q rxfleet.cpu"),
    ("beat", " beat "),
    ("sandbox", "rxfleet gateway"),
    ("postgres", "postgres"),
    ("redis", "-server"),
)


def kind_of(cmd: str) -> str:
    return next((kind for kind, mark in KINDS if mark in f"{cmd} "), "other")


def cpu_ms_per_claim(spent: dict[int, tuple[str, float]], cli: float, n: int) -> dict[str, float]:
    """CPU milliseconds a claim per process type; ``cli``: the ``rxfleet run`` process
    (the producer and the export), measured as a finished child."""
    totals: dict[str, float] = {"rxfleet run (producer, export)": cli}
    for cmd, cpu in spent.values():
        if cpu > 0:
            totals[kind_of(cmd)] = totals.get(kind_of(cmd), 0.0) + cpu
    return {kind: round(1000 * cpu / n, 3) for kind, cpu in sorted(totals.items())}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(env: dict[str, str], source: Path, out: Path) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "rxfleet.cli", "run", str(source), "-o", str(out), "--new"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"rxfleet run failed: {done.stderr[-500:]}")
    return time.monotonic() - started


def rows(database: str) -> dict[str, int]:
    with psycopg.connect(database) as conn:
        return {
            table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])  # type: ignore[index]
            for table in ("results", "audit_events", "dead_letters")
        }


def measure(n: int, tmp: Path) -> dict[str, Any]:
    warm, source = tmp / "warm.jsonl", tmp / "claims.jsonl"
    write_claims(warm, 20, "WARM")
    write_claims(source, n, "R")
    with procfile_fleet() as fleet:
        client = redis.Redis.from_url(fleet.redis_url)
        run(fleet.env, warm, tmp / "warm-out.jsonl")
        baseline = int(client.info("memory")["used_memory"])
        before, cli_before = cpu_seconds(), children_cpu()
        seconds = run(fleet.env, source, tmp / "out.jsonl")
        after, cli = cpu_seconds(), children_cpu() - cli_before
        used = int(client.info("memory")["used_memory"])
        held = rows(fleet.env["RXFLEET_DATABASE_URL"])
    spent = {pid: (cmd, cpu - before.get(pid, (cmd, 0.0))[1]) for pid, (cmd, cpu) in after.items()}
    fleet_cpu = sum(cpu for _, cpu in spent.values() if cpu > 0)
    postgres = sum(cpu for cmd, cpu in spent.values() if cmd.startswith("postgres"))
    return {
        "claims": n,
        "seconds": round(seconds, 1),
        "claims_per_s": round(n / seconds),
        "redis_baseline_mb": round(baseline / MB, 2),
        "redis_after_mb": round(used / MB, 2),
        "redis_bytes_per_claim": round((used - baseline) / n, 1),
        "database_rows": held,
        "cpu_seconds_all": round(fleet_cpu, 1),
        "cpu_seconds_postgres": round(postgres, 1),
        "postgres_share": round(postgres / fleet_cpu, 3) if fleet_cpu else None,
        "cpu_ms_per_claim": cpu_ms_per_claim(spent, cli, n),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "record_memory.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rxfleet-record-") as tmp:
        figures = measure(args.claims, Path(tmp))
    for key, value in figures.items():
        print(f"{key:>24}: {value}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
