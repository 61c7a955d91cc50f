"""Wall time and claims/s of ``rxfleet run`` on a claims file, two ways:

* embedded: nothing configured, ``rxfleet run`` starts its own server, worker,
  beat and sandbox gateway (the README's first command);
* fleet: a real ``redis-server`` and the Procfile's process types (gateway,
  cpu worker, submit worker, beat) as separate processes; the CLI only produces
  and waits.

    python bench/fleet_sample.py [--input samples/claims.jsonl] [--repeat 3]

Wall time is the whole CLI process (start-up included); claims/s is the CLI's
own figure (enqueue of the first batch to the last result recorded).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rxfleet.redisserver import LocalRedis, free_port  # noqa: E402

KEYS = {
    "RXFLEET_PHI_KEY": "bench-phi-key-0123456789ab",
    "RXFLEET_VAULT_KEY": "bench-vault-0123456789abc",
}
RATE = re.compile(r"(\d+) claims in ([\d.]+) s \((\d+) claims/s\)")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **KEYS, **extra}


def run_cli(env: dict[str, str], source: Path) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "rxfleet.cli", "run", str(source), "-o", f"{tmp}/out.jsonl"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        wall = time.monotonic() - started
    match = RATE.search(done.stdout)
    assert match, done.stdout
    return wall, int(match.group(3))


@contextmanager
def procfile_fleet() -> Iterator[dict[str, str]]:
    server = LocalRedis(binary=shutil.which("redis-server")).start()
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    tmp = tempfile.mkdtemp(prefix="rxfleet-bench-")
    env = _env(
        RXFLEET_REDIS_URL=server.url,
        RXFLEET_GATEWAY_URL=gateway,
        RXFLEET_TOKEN_URL=f"{gateway}/oauth2/token",
        RXFLEET_SANDBOX_PORT=str(port),
        RXFLEET_BEAT_SCHEDULE=f"{tmp}/beat",
    )
    lines = dict(
        (name.strip(), cmd.strip())
        for name, cmd in (
            line.split(":", 1)
            for line in (ROOT / "Procfile").read_text().splitlines()
            if line.strip() and not line.startswith("#")
        )
    )
    procs = [
        subprocess.Popen(
            ["bash", "-c", f"exec {lines[name]}"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for name in ("gateway", "cpu", "submit", "beat")
    ]
    try:
        _ready(gateway, env)
        yield env
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(30)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def _ready(gateway: str, env: dict[str, str]) -> None:
    for _ in range(300):
        try:
            requests.get(gateway + "/v1/_sandbox/stats", timeout=1)
            ping = subprocess.run(
                ["celery", "-A", "workers.app", "inspect", "ping", "--timeout", "1"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
            )
            if ping.stdout.count("pong") >= 2:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise SystemExit("the Procfile fleet did not come up")


def report(label: str, runs: list[tuple[float, int]], claims: int) -> None:
    walls = [w for w, _ in runs]
    rates = [r for _, r in runs]
    print(
        f"{label:9} {claims} claims  wall median {statistics.median(walls):.2f} s "
        f"(min {min(walls):.2f})  pipeline median {statistics.median(rates)} claims/s "
        f"(max {max(rates)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--input", type=Path, default=ROOT / "samples" / "claims.jsonl")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    claims = sum(1 for _ in args.input.open())
    report("embedded", [run_cli(_env(), args.input) for _ in range(args.repeat)], claims)
    with procfile_fleet() as env:
        report("fleet", [run_cli(env, args.input) for _ in range(args.repeat)], claims)


if __name__ == "__main__":
    main()
