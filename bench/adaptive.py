"""The fleet's in-flight limit finding a gateway's concurrency cap.

    python -m bench.adaptive [--cap 150] [--latency 300] [--seconds 40] [--threads 8]
        [--out bench/out/adaptive.json]

One sandbox gateway subprocess that answers a claim request after ``--latency`` ms
and refuses any above ``--cap`` at once being answered with ``429`` and no
Retry-After (``max_concurrent``). The submit worker's own sender (``context.sender()``:
one aiohttp loop, its gate sized by the fleet's limit in a private redis-server)
sends payable claims from ``--threads`` threads (the Procfile's submit concurrency),
each a window of the sender's share at a time, for ``--seconds``.

Figures: the limit every 0.25 s; its median and range over the second half (settled);
requests, 429s and their share; the most answers the gateway had at once; claims/s.
Pass (exit 0) when the settled median is within 10% of the cap and under 1% of the
requests were refused.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.claimset import payable
from bench.harness import ROOT
from bench.sandbox import sandbox
from config import settings
from config.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from rxfleet import context
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.gateway.aio import AioSender
from rxfleet.gateway.client import Job

OUT = ROOT / "bench" / "out"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cap", type=int, default=150, help="the gateway's concurrency cap")
    parser.add_argument("--latency", type=float, default=300.0, help="gateway latency, ms")
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--out", type=Path, default=OUT / "adaptive.json")
    return parser.parse_args()


SetEnv = Callable[[str, str], None]


def point_at(url: str, redis_url: str, setenv: SetEnv) -> None:
    """This process's settings: the sandbox and the private Redis."""
    for name, value in {
        "RXFLEET_GATEWAY_URL": url, "RXFLEET_TOKEN_URL": f"{url}/oauth2/token",
        "RXFLEET_SANDBOX": "1", "RXFLEET_CLIENT_ID": SANDBOX_CLIENT_ID,
        "RXFLEET_CLIENT_SECRET": SANDBOX_CLIENT_SECRET, "RXFLEET_REDIS_URL": redis_url,
    }.items():  # fmt: skip
        setenv(name, value)
    settings.reset()


class Load:
    """Threads sending windows of the sender's share until told to stop."""

    def __init__(self, sender: AioSender, token: str, threads: int) -> None:
        self.sender, self.token, self.stop = sender, token, threading.Event()
        self.bodies = payable(2000).bodies
        self.statuses: Counter[str] = Counter()
        self._lock, self._n = threading.Lock(), 0
        self.threads = [threading.Thread(target=self._send, args=(i,)) for i in range(threads)]

    def _jobs(self, size: int) -> list[Job]:
        with self._lock:
            first, self._n = self._n, self._n + size
        return [
            Job(self.bodies[i % len(self.bodies)], self.token, 3600, f"A{i:09d}~adaptive")
            for i in range(first, first + size)
        ]

    def _send(self, _: int) -> None:
        while not self.stop.is_set():
            results = self.sender.send(self._jobs(self.sender.window()), lambda: True, _quiet)
            with self._lock:
                self.statuses.update(_status(r) for r in results)


def _quiet(_: object) -> None:
    pass


def _status(timed: Any) -> str:
    return "held" if timed is None else type(timed[0]).__name__


def measure(
    args: argparse.Namespace, tmp: Path, setenv: SetEnv = os.environ.__setitem__
) -> dict[str, Any]:
    """Run the load against a capped sandbox (``args``: cap, latency, seconds, threads)."""
    redis_server = LocalRedis().start()
    try:
        with sandbox(args.latency, tmp, max_concurrent=args.cap) as gw:
            point_at(gw.url, redis_server.url, setenv)
            context.forget()
            sender = context.sender()
            load = Load(sender, context.gateway_client().fetch_token().access_token, args.threads)
            limits: list[tuple[float, int]] = []
            started = time.monotonic()
            for thread in load.threads:
                thread.start()
            while (now := time.monotonic() - started) < args.seconds:
                limits.append((round(now, 2), sender.window()))
                time.sleep(0.25)
            load.stop.set()
            for thread in load.threads:
                thread.join()
            seconds = time.monotonic() - started
            stats = gw.stats()
    finally:
        context.forget()  # closes the sender
        settings.reset()
        redis_server.stop()
    return report(args, limits, load.statuses, stats, seconds)


def report(
    args: argparse.Namespace, limits: list[tuple[float, int]], statuses: Counter[str],
    stats: dict[str, Any], seconds: float,
) -> dict[str, Any]:  # fmt: skip
    settled = [limit for at, limit in limits if at >= args.seconds / 2]
    requests = sum(statuses.values())
    refused = stats["concurrency"]["refused"]
    return {
        "cap": args.cap, "latency_ms": args.latency, "seconds": round(seconds, 1),
        "settled_median": statistics.median(settled), "settled_min": min(settled),
        "settled_max": max(settled), "requests": requests, "refused_429": refused,
        "refused_share": refused / max(1, requests), "busiest": stats["concurrency"]["busiest"],
        "claims_per_second": round(statuses["Adjudication"] / seconds, 1),
        "statuses": dict(statuses), "limits": limits,
    }  # fmt: skip


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="rxfleet-adaptive-") as tmp:
        figures = measure(args, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    trace = " ".join(str(limit) for _, limit in figures["limits"][::4])
    print(f"limit every second: {trace}")
    print(
        f"settled (second half): median {figures['settled_median']}, "
        f"{figures['settled_min']}-{figures['settled_max']} against a cap of {args.cap}"
    )
    print(f"requests {figures['requests']}, refused 429 {figures['refused_429']} "
          f"({figures['refused_share']:.2%}); the gateway answered {figures['busiest']} at "
          f"most at once; {figures['claims_per_second']} claims/s")  # fmt: skip
    ok = abs(figures["settled_median"] - args.cap) <= 0.1 * args.cap
    ok = ok and figures["refused_share"] < 0.01
    print("PASS" if ok else "FAIL", f"written: {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
