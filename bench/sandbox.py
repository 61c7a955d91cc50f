"""One sandbox gateway subprocess (``rxfleet gateway``) on a free loopback port."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from bench.harness import ROOT, base_env, stop_process
from config.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET, SANDBOX_SCOPE
from rxfleet.embedded.redis_server import free_port

TOKEN_FORM = {
    "grant_type": "client_credentials",
    "client_id": SANDBOX_CLIENT_ID,
    "client_secret": SANDBOX_CLIENT_SECRET,
    "scope": SANDBOX_SCOPE,
}


@dataclass(frozen=True)
class Sandbox:
    url: str
    pid: int

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/token"

    @property
    def claims_url(self) -> str:
        return f"{self.url}/v1/claims"

    def reset(self) -> None:
        requests.post(f"{self.url}/v1/_sandbox/reset", timeout=30).raise_for_status()

    def stats(self) -> dict[str, Any]:
        response = requests.get(f"{self.url}/v1/_sandbox/stats", timeout=60)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


def check_exactly_once(
    stats: dict[str, Any], keys: list[str], ignore: str = "warm-"
) -> dict[str, Any]:
    """Whether every claim (``keys``: claim ids, or keys without a ``~``) was
    adjudicated exactly once, by one Idempotency-Key, and nothing else was; the counts.

    ``problems`` lists what failed (empty when all is well): the caller asserts on it.
    Claims starting with ``ignore`` (a warm-up before the timed run) are left out.
    """
    seen = {k: v for k, v in stats["claims"].items() if not k.startswith(ignore)}
    once = sum(1 for key in keys if seen.get(key, {}).get("adjudications") == 1)
    extra = set(seen) - set(keys)
    requests_per_key = Counter(seen[key]["requests"] for key in keys if key in seen)
    problems = []
    if once != len(keys):
        problems.append(f"{len(keys) - once} of {len(keys)} keys not adjudicated exactly once")
    if extra:
        problems.append(f"{len(extra)} unexpected keys at the gateway")
    if stats["same_content"]:
        problems.append(f"{stats['same_content']} bodies adjudicated under a second key")
    return {
        "problems": problems,
        "adjudicated_once": once,
        "claim_requests": stats["claim_requests"],
        "token_fetches": stats["token_fetches"],
        "requests_per_key": dict(requests_per_key),
        "by_status": stats["by_status"],
    }


def _wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise SystemExit(f"the sandbox gateway exited ({proc.returncode})")
        try:
            requests.get(f"{url}/v1/_sandbox/stats", timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("the sandbox gateway did not come up")


def _command(backlog: int) -> list[str]:
    """The stock ``rxfleet gateway`` (its listen backlog is 256: ``backlog`` is kept for
    the command line's sake)."""
    return [sys.executable, "-m", "rxfleet.cli", "gateway"]


@contextmanager
def sandbox(latency_ms: float, tmp: Path, backlog: int = 0, **knobs: Any) -> Iterator[Sandbox]:
    """A sandbox gateway answering every claim after ``latency_ms``; stopped on exit.

    ``backlog`` > 0: its listen backlog (bench/sandbox_main.py); 0: stock ``rxfleet gateway``.
    ``knobs``: more of its scenario (``max_concurrent=150``).
    """
    scenario = tmp / f"latency-{latency_ms:g}.json"
    scenario.write_text(json.dumps({"latency_ms": latency_ms, **knobs}))
    port = free_port()
    command = [*_command(backlog), "--port", str(port), "--scenario", str(scenario)]
    log = (tmp / f"gateway-{latency_ms:g}.log").open("ab")
    proc = subprocess.Popen(
        command, cwd=ROOT, env=base_env(), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url, proc)
        yield Sandbox(url, proc.pid)
    finally:
        stop_process(proc, grace=10)
