"""Side-by-side throughput: the rxfleet fleet against three plain clients, same sandbox.

    python -m bench.throughput [--latency 0,20,200] [--claims 5000] [--claims-slow 2000]
        [--threads N] [--submit-concurrency N] [--fleet-batch-size N]
        [--contenders fleet,bare,seed000,seed003] [--gateway-backlog 128] [--profile]
        [--out bench/out/throughput.json]

For each latency L (ms) one sandbox gateway subprocess (``rxfleet gateway
--scenario {"latency_ms": L}``) answers every contender; it is reset before each.
N payable-only claims (``--claims``; ``--claims-slow`` from 200 ms on) come from
``rxfleet.claims.synth``; every contender sends the same gateway bodies, under its
own Idempotency-Key prefix (``fleet-``, ``bare-``, ``seed000-``, ``seed003-``).

Contenders (bench/contenders.py has the details):

* fleet: the Procfile's cpu, submit and beat processes (defaults, unless
  ``--submit-concurrency``) on a private redis-server, pointed at the sandbox;
  ``rxfleet run input.jsonl -o out.jsonl`` is the client (``--batch-size`` only
  with ``--fleet-batch-size``). Seconds = wall time of that command, start-up and
  result export included.
* bare: one requests.Session, ``--threads`` threads (default: the Procfile's
  submit concurrency), one token, one POST per claim.
* seed000: seed 000's credential manager, one claim after another.
* seed003: seed 003's aiohttp windows of 500 claims, each ``asyncio.gather``-ed.

Figures:

* claims/s = N / seconds; ratio = fleet claims/s / contender claims/s (above 1:
  the fleet is faster).
* once = keys the sandbox adjudicated exactly once (asserted equal to N, with no
  other key seen); requests per key, token fetches and HTTP statuses are in the JSON.
* Redis commands per claim (fleet only): ``INFO commandstats`` of the fleet's
  redis-server before and after ``rxfleet run``; total calls delta / N, and the
  top commands by calls (every process counts: CLI, workers, beat).
* ``--profile``: py-spy samples the submit worker during the 0 ms fleet run; the
  top frames by own samples (leaf) and by inclusive samples.

The sandbox is the stock ``rxfleet gateway`` (listen backlog 256, so seed 003's
burst of connections is accepted). The run fails (exit 1) when any exactly-once check does.

Everything runs on 127.0.0.1 free ports in private temp directories and is stopped
on exit, Ctrl-C or failure. Memory figures: bench/memory.py.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import Any

from bench.claimset import ClaimSet, payable
from bench.contenders import CONTENDERS
from bench.fleetrun import FleetOptions, run_fleet
from bench.harness import ROOT, procfile
from bench.sandbox import Sandbox, check_exactly_once, sandbox

OUT = ROOT / "bench" / "out"
ALL = ["fleet", *CONTENDERS]


def procfile_submit_concurrency() -> int:
    match = re.search(r"RXFLEET_SUBMIT_CONCURRENCY:-(\d+)", procfile()["submit"])
    return int(match.group(1)) if match else 8


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", default="0,20,200", help="sandbox latencies, ms")
    parser.add_argument("--claims", type=int, default=5000)
    parser.add_argument("--claims-slow", type=int, default=2000, help="N from 200 ms on")
    parser.add_argument("--threads", type=int, default=procfile_submit_concurrency())
    parser.add_argument("--submit-concurrency", type=int, default=None)
    parser.add_argument(
        "--fleet-batch-size", type=int, default=None, help="rxfleet run --batch-size"
    )
    parser.add_argument("--contenders", default=",".join(ALL))
    parser.add_argument(
        "--fleet-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an RXFLEET_* setting for the fleet's processes (repeatable)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the 0 ms submit worker")
    backlog = "sandbox listen backlog (0: stock `rxfleet gateway`, listen(5))"
    parser.add_argument("--gateway-backlog", type=int, default=128, help=backlog)
    parser.add_argument("--out", type=Path, default=OUT / "throughput.json")
    return parser.parse_args()


def row(latency: float, name: str, n: int, seconds: float, **extra: Any) -> dict[str, Any]:
    rate = n / seconds
    return {"latency_ms": latency, "contender": name, "claims": n,
            "seconds": round(seconds, 2), "claims_per_s": round(rate, 1), **extra}  # fmt: skip


def run_contender(name: str, box: Sandbox, claims: ClaimSet, threads: int) -> dict[str, Any]:
    box.reset()
    items = claims.keyed(f"{name}-")
    started = time.monotonic()
    answers: Counter[str] = CONTENDERS[name](box, items, threads)
    seconds = time.monotonic() - started
    once = check_exactly_once(box.stats(), [key for key, _ in items])
    return {"seconds": seconds, "answers": dict(answers), "gateway": once}


def fleet_options(args: argparse.Namespace, latency: float) -> FleetOptions:
    profile = args.profile and latency == 0
    env = dict(item.split("=", 1) for item in args.fleet_env)
    return FleetOptions(args.submit_concurrency, args.fleet_batch_size, profile, env)


def one_latency(latency: float, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    n = args.claims_slow if latency >= 200 else args.claims
    claims = payable(n)
    names = [c for c in ALL if c in args.contenders.split(",")]
    rows = []
    with sandbox(latency, tmp, args.gateway_backlog) as box:
        for name in names:
            if name == "fleet":
                fleet = run_fleet(box, claims, tmp, fleet_options(args, latency))
                extra, seconds = fleet.figures(), fleet.seconds
            else:
                extra = run_contender(name, box, claims, args.threads)
                seconds = extra.pop("seconds")
            rows.append(row(latency, name, n, seconds, **extra))
            print(_line(rows[-1]), flush=True)
    return rows


def _line(r: dict[str, Any]) -> str:
    once, problems = r["gateway"]["adjudicated_once"], r["gateway"]["problems"]
    return (f"  {r['latency_ms']:>5g} ms  {r['contender']:<8} {r['claims']:>6} claims "
            f"{r['seconds']:>8.2f} s {r['claims_per_s']:>8.1f} claims/s  once={once} "
            f"answers={r['answers']} {'; '.join(problems)}")  # fmt: skip


def add_ratios(rows: list[dict[str, Any]]) -> None:
    fleet = {r["latency_ms"]: r["claims_per_s"] for r in rows if r["contender"] == "fleet"}
    for r in rows:
        base = fleet.get(r["latency_ms"])
        r["fleet_ratio"] = round(base / r["claims_per_s"], 2) if base else None


def print_table(rows: list[dict[str, Any]]) -> None:
    print(f"\n{'latency':>8} {'contender':<9} {'claims':>7} {'seconds':>8} "
          f"{'claims/s':>9} {'fleet/contender':>16} {'once':>6}")  # fmt: skip
    for r in rows:
        ratio = "-" if r["fleet_ratio"] is None else f"{r['fleet_ratio']:.2f}"
        once = r["gateway"]["adjudicated_once"]
        print(f"{r['latency_ms']:>6g}ms {r['contender']:<9} {r['claims']:>7} "
              f"{r['seconds']:>8.2f} {r['claims_per_s']:>9.1f} {ratio:>16} {once:>6}")  # fmt: skip
    for r in rows:
        if "redis" in r:
            print_redis(r)
        if r.get("profile"):
            print_profile(r["profile"])


def print_redis(r: dict[str, Any]) -> None:
    redis_figures = r["redis"]
    print(f"\nRedis commands per claim, fleet at {r['latency_ms']:g} ms: "
          f"{redis_figures['per_claim']:.1f} ({redis_figures['total_calls']} calls)")  # fmt: skip
    for command, calls in redis_figures["top"]:
        print(f"    {command:<22} {calls:>9}  {calls / r['claims']:>7.2f}/claim")


def print_profile(profile: dict[str, Any]) -> None:
    if "error" in profile:
        print(f"\npy-spy: {profile['error']}")
        return
    print(f"\npy-spy, submit worker at 0 ms: {profile['samples']} active samples")
    for title in ("own", "inclusive"):
        print(f"  top frames ({title}):")
        for frame, count in profile[title]:
            print(f"    {100 * count / profile['samples']:5.1f}%  {frame}")


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _stop)
    latencies = [float(x) for x in args.latency.split(",") if x.strip()]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="rxfleet-throughput-") as tmp:
        for latency in latencies:
            rows += one_latency(latency, args, Path(tmp))
    add_ratios(rows)
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    config = {k: str(v) for k, v in vars(args).items()}
    args.out.write_text(json.dumps({"config": config, "rows": rows}, indent=1))
    print(f"\nwritten: {args.out}")
    failed = [f"{r['latency_ms']:g} ms {r['contender']}: {p}" for r in rows
              for p in r["gateway"]["problems"]]  # fmt: skip
    if failed:
        raise SystemExit("exactly-once check failed:\n" + "\n".join(failed))


if __name__ == "__main__":
    main()
