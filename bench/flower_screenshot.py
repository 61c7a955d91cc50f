"""Flower in a real headless browser during a real run of the Procfile's processes.

Starts a private redis-server and PostgreSQL, the Procfile's gateway, cpu, submit,
beat, flower and metrics lines, runs ``rxfleet run`` on generated claims and,
while it runs, has Debian's chromium (headless) take a screenshot of Flower's
task list with basic auth. Checks that Flower answers 401 without credentials
and that the metrics exporter serves the run's counters. Writes
``bench/out/flower_tasks.png``::

    python -m bench.flower_screenshot [--claims 5000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.gen_inputs import generate
from bench.harness import KEYS, ROOT, procfile_fleet
from rxfleet.embedded.redis_server import free_port

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars",
]  # fmt: skip


def _wait(url: str, auth: tuple[str, str] | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, auth=auth, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


def screenshot(url: str, out: Path, size: str = "1400,1000") -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="rxfleet-chromium-") as profile:
        subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
             "--virtual-time-budget=6000", f"--screenshot={out}", url],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=5000, help="claims in the run")
    args = parser.parse_args(argv)
    out_dir = ROOT / "bench" / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    user, password = KEYS["RXFLEET_FLOWER_AUTH"].split(":", 1)
    flower_port, metrics_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="rxfleet-flower-") as tmp:
        (claims,) = generate(args.claims, Path(tmp), ["jsonl"])
        with procfile_fleet() as fleet:
            fleet.env["RXFLEET_FLOWER_PORT"] = str(flower_port)
            fleet.env["RXFLEET_METRICS_PORT"] = str(metrics_port)
            fleet.start("flower")
            fleet.start("metrics")
            flower = f"http://127.0.0.1:{flower_port}"
            _wait(flower + "/api/workers", auth=(user, password))
            _wait(f"http://127.0.0.1:{metrics_port}/metrics")
            run = subprocess.Popen(
                [sys.executable, "-m", "rxfleet.cli", "run", str(claims), "--batch-size", "250",
                 "--json"],
                cwd=ROOT, env=fleet.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(4)  # batches in flight and done: Flower has seen them
            anonymous = requests.get(flower + "/tasks", timeout=10).status_code
            tasks = requests.get(flower + "/api/tasks", auth=(user, password), timeout=10).json()
            png = out_dir / "flower_tasks.png"
            screenshot(f"http://{user}:{password}@127.0.0.1:{flower_port}/tasks", png)
            stdout, stderr = run.communicate(timeout=600)
            metrics = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    claims_lines = [ln for ln in metrics.splitlines() if ln.startswith("rxfleet_claims_total")]
    print(f"flower without credentials: HTTP {anonymous}")
    print(f"flower tasks seen during the run: {len(tasks)}")
    print(f"run: exit {run.returncode}: {stdout.strip() or stderr.strip()}")
    print("metrics after the run:", *claims_lines, sep="\n  ")
    print(f"screenshot: {png}")
    return 0 if anonymous == 401 and run.returncode == 0 and png.is_file() else 1


if __name__ == "__main__":
    sys.exit(main())
