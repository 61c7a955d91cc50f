"""Kept-alive claim latency through the sandbox gateway, with and without TCP_NODELAY.

Run from the repository root::

    python -m bench.gateway_latency [-n 500]

Each round starts a ``SandboxGateway`` on a free port and sends N claims, one
after the other, through the fleet's claim transport (``AioSender``, aiohttp, a
window of one: one kept-alive connection), timing each request end to end. Without TCP_NODELAY on
the server's socket, the body write that follows the header write waits for the
client's delayed ACK (Nagle): expect tens of milliseconds a request instead of well under one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from config.settings import Settings
from rxfleet.gateway.aio import AioSender
from rxfleet.gateway.client import GatewayClient, Job
from rxfleet.gateway.sandbox.server import SandboxGateway

CLAIM: dict[str, Any] = {
    "bin": "610014",
    "pcn": "RXSANDBX",
    "group_id": "GRP100",
    "cardholder_id": "BENCH0000001",
    "date_of_service": "2026-01-15",
    "ndc": "00093721401",
    "gpi": "39400010100310",
    "quantity_dispensed": 30,
    "days_supply": 30,
    "plan_id": "PLAN-COMM",
}


def measure(tcp_nodelay: bool, n: int, warmup: int = 20) -> list[float]:
    """Milliseconds for each of ``n`` claim submissions over one kept-alive connection."""
    timings: list[float] = []
    with SandboxGateway(tcp_nodelay=tcp_nodelay) as gateway:
        values: dict[str, Any] = {
            "gateway_url": gateway.url,
            "token_url": gateway.token_url,
            "sandbox": True,  # its credentials
        }
        with GatewayClient(Settings(**values)) as client:
            sender = AioSender(client)
            try:
                token = client.fetch_token().access_token
                for i in range(warmup + n):
                    ms = _one(sender, token, f"BENCH-{tcp_nodelay:d}-{i}")
                    if i >= warmup:
                        timings.append(ms)
            finally:
                sender.close()
    return timings


def _one(sender: AioSender, token: str, claim_id: str) -> float:
    """Milliseconds for one claim, sent alone; an error answer stops the benchmark."""
    job = Job({**CLAIM, "claim_id": claim_id}, token, 3600, claim_id)
    started = time.perf_counter()
    (timed,) = sender.send([job], lambda: True, lambda _: None)
    ms = (time.perf_counter() - started) * 1000
    if timed is None or isinstance(timed[0], Exception):
        raise SystemExit(f"claim {claim_id}: {timed and timed[0]}")
    return ms


def summary(label: str, timings: list[float]) -> str:
    """One line: median, p99 and max in milliseconds."""
    p99 = statistics.quantiles(timings, n=100)[98]
    return (
        f"{label:<18} n={len(timings):<5} median={statistics.median(timings):8.3f} ms"
        f"  p99={p99:8.3f} ms  max={max(timings):8.3f} ms"
    )


def main() -> None:
    """Measure both ways and print one line for each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=300, help="timed requests per round")
    args = parser.parse_args()
    for tcp_nodelay in (True, False):
        label = "TCP_NODELAY on" if tcp_nodelay else "TCP_NODELAY off"
        print(summary(label, measure(tcp_nodelay, args.n)))


if __name__ == "__main__":
    main()
