"""Scale: the Procfile's processes at 1, 2, 4, 8 submit workers, side by side with seed
003 and a bare aiohttp floor on the same sandbox and latency, with the CPU a claim of
every process type and the cores kept busy.

    python -m bench.scale [--latency 0,20,200] [--claims 20000] [--claims-slow 6000]
        [--submit-workers 1,2,4,8] [--cpu-concurrency N] [--out bench/out/scale.json]

For each latency L (ms) one sandbox gateway subprocess (``rxfleet gateway``, every
claim answered after L ms) serves every row; it is reset before each. A fleet row is
a fresh Procfile fleet (redis-server, PostgreSQL, cpu worker with ``--cpu-concurrency``
processes, k submit workers, beat, each with the Procfile's defaults otherwise),
warmed by a 20-claim run, then ``rxfleet run input.jsonl -o out.jsonl`` timed end to
end. Rows ``seed003`` (windows of 500 gathered, one process) and ``aiohttp`` (512 in
flight, one process) send the same bodies from this process.

Figures per row: claims/s (N / wall seconds), how many times seed 003's; the gateway's
own count (every key adjudicated exactly once, asserted); busy cores (all CPU seconds
spent by every process during the row / wall seconds, the sandbox's included); the CPU
milliseconds a claim per process type (``rxfleet run``: the producer and the export;
cpu; submit; beat; redis; postgres; sandbox; the contenders run in "bench process");
and the client's, all of them but the sandbox's and unrelated processes'.
Nothing here needs a network: it runs unchanged on a bigger machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.claimset import ClaimSet, payable
from bench.contenders import CONTENDERS
from bench.fleetrun import run_cli, warm_up
from bench.harness import ROOT, procfile_fleet
from bench.record_memory import children_cpu, cpu_seconds, kind_of
from bench.sandbox import Sandbox, check_exactly_once, sandbox

OUT = ROOT / "bench" / "out"
CPU = dict[int, tuple[str, float]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", default="0,20,200", help="sandbox latencies, ms")
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--claims-slow", type=int, default=6_000, help="N from 200 ms on")
    parser.add_argument("--submit-workers", default="1,2,4,8")
    cores = os.cpu_count() or 2
    parser.add_argument("--cpu-concurrency", type=int, default=max(2, cores // 2))
    parser.add_argument("--out", type=Path, default=OUT / "scale.json")
    return parser.parse_args()


def spent(before: CPU, after: CPU, mine: float, cli: float) -> dict[str, float]:
    """CPU seconds by process type between two readings (``mine``: this process)."""
    totals: dict[str, float] = {"rxfleet run": cli, "bench process": mine}
    for pid, (cmd, cpu) in after.items():
        delta = cpu - before.get(pid, (cmd, 0.0))[1]
        if delta > 0 and pid != os.getpid():
            kind = "sandbox" if "rxfleet.cli gateway" in cmd else kind_of(cmd)
            totals[kind] = totals.get(kind, 0.0) + delta
    return {kind: seconds for kind, seconds in totals.items() if seconds > 0}


def figures(name: str, n: int, seconds: float, cpu: dict[str, float], once: Any) -> dict[str, Any]:
    return {
        "contender": name, "claims": n, "seconds": round(seconds, 2),
        "claims_per_s": round(n / seconds, 1), "busy_cores": round(sum(cpu.values()) / seconds, 2),
        "cpu_ms_per_claim": {k: round(1000 * v / n, 3) for k, v in sorted(cpu.items())},
        "client_cpu_ms_per_claim": round(1000 * sum(
            v for k, v in cpu.items() if k not in ("sandbox", "other")) / n, 3),
        "adjudicated_once": once["adjudicated_once"], "problems": once["problems"],
    }  # fmt: skip


def fleet_row(box: Sandbox, claims: ClaimSet, k: int, cpu_procs: int, tmp: Path) -> dict[str, Any]:
    source, out = tmp / f"scale-{k}.jsonl", tmp / f"scale-{k}-out.jsonl"
    keys = claims.write_jsonl(source, f"s{k}-")
    box.reset()
    extra = {"RXFLEET_CPU_CONCURRENCY": str(cpu_procs)}
    with procfile_fleet(gateway_url=box.url, submit_workers=k, extra_env=extra) as fleet:
        warm_up(fleet.env, claims, tmp, None)
        before, cli_before, mine = cpu_seconds(), children_cpu(), time.process_time()
        seconds, _ = run_cli(fleet.env, source, out, None)
        cpu = spent(before, cpu_seconds(), time.process_time() - mine, children_cpu() - cli_before)
    once = check_exactly_once(box.stats(), keys)
    return figures(f"fleet, {k} submit", len(keys), seconds, cpu, once)


def contender_row(box: Sandbox, claims: ClaimSet, name: str) -> dict[str, Any]:
    box.reset()
    items = claims.keyed(f"{name}-")
    before, mine = cpu_seconds(), time.process_time()
    started = time.monotonic()
    CONTENDERS[name](box, items, 8)
    seconds = time.monotonic() - started
    cpu = spent(before, cpu_seconds(), time.process_time() - mine, 0.0)
    once = check_exactly_once(box.stats(), [key for key, _ in items])
    return figures(name, len(items), seconds, cpu, once)


def one_latency(latency: float, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    claims = payable(args.claims_slow if latency >= 200 else args.claims)
    rows = []
    with sandbox(latency, tmp) as box:
        for name in ("seed003", "aiohttp"):
            rows.append({"latency_ms": latency, **contender_row(box, claims, name)})
            print(_line(rows[-1]), flush=True)
        for k in [int(x) for x in args.submit_workers.split(",") if x.strip()]:
            rows.append({"latency_ms": latency,
                         **fleet_row(box, claims, k, args.cpu_concurrency, tmp)})  # fmt: skip
            print(_line(rows[-1]), flush=True)
    seed = rows[0]["claims_per_s"]
    for r in rows:
        r["x_seed003"] = round(r["claims_per_s"] / seed, 2)
    return rows


def _line(r: dict[str, Any]) -> str:
    split = " ".join(f"{k} {v:.3f}" for k, v in r["cpu_ms_per_claim"].items())
    return (f"{r['latency_ms']:>5g} ms {r['contender']:<16} {r['claims_per_s']:>8.1f} claims/s "
            f"busy {r['busy_cores']:>5.2f} cores  once {r['adjudicated_once']}  "
            f"CPU ms a claim: {split}")  # fmt: skip


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'latency':>8} {'row':<16} {'claims/s':>9} {'x seed003':>10} {'busy cores':>11} "
          f"{'client CPU ms/claim':>19}")  # fmt: skip
    for r in rows:
        print(f"{r['latency_ms']:>6g}ms {r['contender']:<16} {r['claims_per_s']:>9.1f} "
              f"{r['x_seed003']:>10.2f} {r['busy_cores']:>11.2f} "
              f"{r['client_cpu_ms_per_claim']:>19.3f}")  # fmt: skip


def main() -> int:
    args = parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rxfleet-scale-") as tmp:
        for latency in [float(x) for x in args.latency.split(",") if x.strip()]:
            rows += one_latency(latency, args, Path(tmp))
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2))
    print(f"\nwritten: {args.out}")
    bad = [r for r in rows if r["problems"] or r["adjudicated_once"] != r["claims"]]
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
