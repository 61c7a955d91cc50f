"""Wall time and claims/s of ``rxfleet run`` on a claims file, two ways:

* embedded: nothing configured, ``rxfleet run`` starts its own server, worker,
  beat and sandbox gateway (the README's first command);
* fleet: a real ``redis-server`` and the Procfile's process types (gateway,
  cpu worker, submit worker, beat) as separate processes; the CLI only produces
  and waits.

    python -m bench.fleet_sample [--input samples/claims.jsonl] [--repeat 3]

Wall time is the whole CLI process (start-up included); claims/s is the CLI's
own figure (enqueue of the first batch to the last result recorded).
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import ROOT, base_env, procfile_fleet

RATE = re.compile(r"(\d+) claims in ([\d.]+) s \((\d+) claims/s\)")


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
    report("embedded", [run_cli(base_env(), args.input) for _ in range(args.repeat)], claims)
    with procfile_fleet() as fleet:
        report("fleet", [run_cli(fleet.env, args.input) for _ in range(args.repeat)], claims)


if __name__ == "__main__":
    main()
