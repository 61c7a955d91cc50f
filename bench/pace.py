"""The fleet's pace on the Procfile's processes: the adaptive in-flight limit against
a gateway that caps concurrency, and the fleet-wide rate at the gateway's own count.

    python -m bench.pace [--part cap,rate] [--cap 150] [--latency 200] [--claims 6000]
        [--rate 200] [--rate-claims 5000] [--rate-submit 2] [--out bench/out/pace.json]

* cap: the sandbox (``max_concurrency`` = ``--cap``, ``latency_ms`` = ``--latency``)
  answers 429 above the cap; one submit worker, the defaults otherwise (the fleet
  limit starts at 64). Printed: the share of requests answered 429 (all, and in
  the second half of the run), the requests in progress at the gateway (from its
  own log: every request's start and end) averaged over the second half, the
  fleet's limit at the end (Redis), and whether every claim was adjudicated once.
* rate: ``RXFLEET_GATEWAY_RATE`` = ``--rate``, ``--rate-submit`` submit workers,
  a 0 ms sandbox; printed: the most claim requests the sandbox counted in any one
  second (its ``per_second``), the mean over the full seconds, and claims / the
  gateway-side span as a share of the rate.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import requests

from bench.claimset import payable
from bench.fleetrun import run_cli
from bench.harness import ROOT, procfile_fleet
from bench.sandbox import check_exactly_once

OUT = ROOT / "bench" / "out" / "pace.json"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--part", default="cap,rate")
    parser.add_argument("--cap", type=int, default=150)
    parser.add_argument("--latency", type=float, default=200.0)
    parser.add_argument("--claims", type=int, default=6000)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--rate-claims", type=int, default=5000)
    parser.add_argument("--rate-submit", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


def fleet_run(
    tmp: Path, n: int, prefix: str, scenario: dict[str, Any], submit: int, env: dict[str, str]
) -> tuple[dict[str, Any], dict[str, Any], float]:
    """One ``rxfleet run`` of ``n`` payable claims: the sandbox's stats, the fleet's limit
    and the run's wall seconds."""
    source, out = tmp / f"{prefix}in.jsonl", tmp / f"{prefix}out.jsonl"
    keys = payable(n).write_jsonl(source, prefix)
    path = tmp / f"{prefix}scenario.json"
    path.write_text(json.dumps(scenario))
    with procfile_fleet(submit_workers=submit, scenario=path, extra_env=env) as fleet:
        seconds, _ = run_cli(fleet.env, source, out, None)
        stats = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=60).json()
        client = fleet.redis_client()
        raw: dict[str, Any] = {str(k): v for k, v in client.hgetall(_limit_key(client)).items()}
    stats["once"] = check_exactly_once(stats, keys)
    return stats, raw, seconds


def _limit_key(client: Any) -> str:
    keys = [k for k in client.scan_iter("rx:gateway:inflight:*") if not k.endswith(":procs")]
    return str(keys[0]) if keys else "rx:gateway:inflight:none"


def in_progress(log: list[dict[str, Any]], start: float, end: float, step: float = 0.1) -> float:
    """Mean requests in progress at the gateway between ``start`` and ``end``."""
    samples = []
    t = start
    while t < end:
        samples.append(sum(1 for e in log if e["started"] <= t < e["finished"]))
        t += step
    return sum(samples) / len(samples) if samples else 0.0


def cap_part(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    scenario = {"latency_ms": args.latency, "max_concurrency": args.cap}
    stats, limit, seconds = fleet_run(tmp, args.claims, "cap-", scenario, 1, {})
    log = [e for e in stats["log"] if e["path"] == "/v1/claims"]
    first, last = log[0]["started"], max(e["finished"] for e in log)
    middle, span = (first + last) / 2, last - first
    late = [e for e in log if e["started"] >= middle]
    throttled = sum(1 for e in log if e["status"] == 429)
    return {
        "cap": args.cap, "latency_ms": args.latency, "claims": args.claims,
        "seconds": round(seconds, 2), "requests": len(log), "throttled": throttled,
        "throttled_share": round(throttled / len(log), 4),
        "throttled_share_late": round(sum(1 for e in late if e["status"] == 429) / len(late), 4),
        "in_progress_late": round(in_progress(log, middle, last), 1),
        "in_progress_settled": round(in_progress(log, first + 0.4 * span, first + 0.8 * span), 1),
        "peak_concurrency": stats["peak_concurrency"], "fleet_limit": limit,
        "problems": stats["once"]["problems"],
    }  # fmt: skip


def rate_part(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    env = {"RXFLEET_GATEWAY_RATE": str(args.rate)}
    stats, _, seconds = fleet_run(tmp, args.rate_claims, "rate-", {}, args.rate_submit, env)
    counts = {int(k): v for k, v in stats["per_second"].items()}
    warm = {k: v for k, v in counts.items() if v}  # the warm-up is not in this fleet's run
    full = list(warm.values())[1:-1]
    span = max(warm) - min(warm) + 1
    return {
        "rate": args.rate, "claims": args.rate_claims, "submit_workers": args.rate_submit,
        "seconds": round(seconds, 2), "max_in_a_second": max(counts.values()),
        "mean_full_seconds": round(sum(full) / len(full), 1) if full else None,
        "gateway_rate_share": round(stats["claim_requests"] / span / args.rate, 3),
        "run_rate_share": round(args.rate_claims / seconds / args.rate, 3),
        "problems": stats["once"]["problems"],
    }  # fmt: skip


def main() -> None:
    args = parse_args()
    parts = args.part.split(",")
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rxfleet-pace-") as tmp:
        if "cap" in parts:
            report["cap"] = cap_part(args, Path(tmp))
            print("cap: " + json.dumps(report["cap"]), flush=True)
        if "rate" in parts:
            report["rate"] = rate_part(args, Path(tmp))
            print("rate: " + json.dumps(report["rate"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
