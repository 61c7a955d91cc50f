"""Kept-alive claim latency through the sandbox gateway, with and without TCP_NODELAY.

Run from the repository root::

    python -m bench.gateway_latency [-n 500]

Each round starts a ``SandboxGateway`` on a free port and sends N claims through
one ``GatewayClient`` (one ``requests.Session``, so one kept-alive connection),
timing each ``submit`` end to end. Without TCP_NODELAY on the server's socket,
the body write that follows the header write waits for the client's delayed ACK
(Nagle): expect tens of milliseconds a request instead of well under one.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from config.settings import Settings
from rxfleet.gateway.client import GatewayClient
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
        values: dict[str, Any] = {"gateway_url": gateway.url, "token_url": gateway.token_url}
        with GatewayClient(Settings(**values)) as client:
            token = client.fetch_token().access_token
            for i in range(warmup + n):
                claim_id = f"BENCH-{tcp_nodelay:d}-{i}"
                started = time.perf_counter()
                client.submit(
                    {**CLAIM, "claim_id": claim_id},
                    token=token,
                    session_ttl=3600,
                    idempotency_key=claim_id,
                )
                if i >= warmup:
                    timings.append((time.perf_counter() - started) * 1000)
    return timings


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
