"""The fleet-wide gateway rate (``RXFLEET_GATEWAY_RATE``) on the Procfile's processes,
counted at the gateway: the sandbox logs when each claim request reached it.

    python -m bench.rate [--rate 200] [--claims 5000] [--submit 2] [--latency 50]
        [--out bench/out/rate.json]

``--submit`` submit workers (each with the Procfile's threads and in-flight limit),
a sandbox answering after ``--latency`` ms. Printed: the most claim requests in any
one-second window (sliding, not aligned to the clock: the strictest count), the mean
over the whole seconds of the steady part (the first and last tenth of the requests
left out), claims over the gateway-side span as a share of the rate, the run's own
wall time, and whether every claim was adjudicated once (the sandbox's count per
Idempotency-Key).
"""

from __future__ import annotations

import argparse
import bisect
import json
import tempfile
from pathlib import Path
from typing import Any

import requests

from bench.claimset import payable
from bench.fleetrun import run_cli
from bench.harness import ROOT, procfile_fleet
from bench.sandbox import check_exactly_once

OUT = ROOT / "bench" / "out" / "rate.json"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--claims", type=int, default=5000)
    parser.add_argument("--submit", type=int, default=2)
    parser.add_argument("--latency", type=float, default=50.0)
    parser.add_argument("--out", type=Path, default=OUT)
    return parser.parse_args()


def busiest_second(times: list[float]) -> int:
    """The most requests in any one-second window starting at a request."""
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


def steady_mean(times: list[float]) -> float:
    """Requests a second over the middle 80 % of them."""
    cut = len(times) // 10
    middle = times[cut : len(times) - cut]
    return (len(middle) - 1) / (middle[-1] - middle[0])


def measure(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    source, out = tmp / "in.jsonl", tmp / "out.jsonl"
    keys = payable(args.claims).write_jsonl(source, "rate-")
    scenario = tmp / "scenario.json"
    scenario.write_text(json.dumps({"latency_ms": args.latency}))
    env = {"RXFLEET_GATEWAY_RATE": str(args.rate)}
    with procfile_fleet(submit_workers=args.submit, scenario=scenario, extra_env=env) as fleet:
        seconds, _ = run_cli(fleet.env, source, out, None)
        stats = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=60).json()
    times = sorted(e["started"] for e in stats["log"] if e["path"] == "/v1/claims")
    return {
        "rate": args.rate, "claims": args.claims, "submit_workers": args.submit,
        "latency_ms": args.latency, "run_seconds": round(seconds, 2),
        "claim_requests": len(times), "busiest_second": busiest_second(times),
        "steady_per_second": round(steady_mean(times), 1),
        "gateway_span_share": round((len(times) - 1) / (times[-1] - times[0]) / args.rate, 3),
        "problems": check_exactly_once(stats, keys)["problems"],
    }  # fmt: skip


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="rxfleet-rate-") as tmp:
        report = measure(args, Path(tmp))
    print(json.dumps(report), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    print(f"written: {args.out}")


if __name__ == "__main__":
    main()
