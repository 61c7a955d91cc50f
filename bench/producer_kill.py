"""The producer SIGKILLed mid-enqueue, at scale, then the same command run again.

    python -m bench.producer_kill [--claims 100000] [--kill-at 15000]

The Procfile's processes (cpu, two submit workers, beat, the sandbox gateway at
15 ms) under a supervisor, a private redis-server and PostgreSQL. ``rxfleet run``
of ``--claims`` claims is SIGKILLed once the database holds ``--kill-at`` results
(the producer is then mid-file: backpressure holds it at RXFLEET_MAX_INFLIGHT
claims ahead of the fleet, 20,000 by default); the same command is run again. Proves: the second
run picks the first up and exits 0; every claim exactly once in its results; no
claim enqueued twice (one ``ingested`` audit event per input position); none
adjudicated twice (the gateway's per-key counts). Figures go to
bench/out/producer_kill.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import requests

from bench.chaos import Lines, write_claims
from bench.harness import ROOT, Fleet, adjudicated_twice, procfile_fleet

OUT = ROOT / "bench" / "out"
GATEWAY = {"seed": 11, "latency_ms": 15}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "rxfleet.cli", *args]


def _first_run(fleet: Fleet, args: list[str], kill_at: int) -> tuple[str, int, float]:
    """Start the run, SIGKILL it once ``kill_at`` results are recorded; (run id,
    results at the kill, seconds it had run)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        _cli(*args), cwd=ROOT, env=fleet.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    stderr = Lines(proc.stderr)
    run_id = stderr.run_id()
    while fleet.results_count() < kill_at:
        if proc.poll() is not None:
            raise SystemExit(f"the first run ended before the kill: {stderr.text()}")
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    return run_id, fleet.results_count(), time.monotonic() - started


def _ledger(database_url: str, run_id: str) -> dict[str, int]:
    with psycopg.connect(database_url) as conn:
        twice = conn.execute(
            "SELECT count(*) FROM (SELECT seq FROM audit_events WHERE run_id = %s"
            " AND stage = 'ingested' GROUP BY seq HAVING count(*) > 1) t",
            (run_id,),
        ).fetchone()
        ingested = conn.execute(
            "SELECT count(DISTINCT seq) FROM audit_events WHERE run_id = %s AND stage = 'ingested'",
            (run_id,),
        ).fetchone()
    assert twice is not None and ingested is not None
    return {"positions_ingested": int(ingested[0]), "enqueued_twice": int(twice[0])}


def trial(count: int, kill_at: int, max_inflight: int | None) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="rxfleet-pkill-"))
    claims, out = tmp / "claims.jsonl", tmp / "results.jsonl"
    ids = write_claims(claims, count)
    scenario = tmp / "gateway.json"
    scenario.write_text(json.dumps(GATEWAY))
    args = ["run", str(claims), "-o", str(out), "--timeout", "3600"]
    with procfile_fleet(submit_workers=2, scenario=scenario, supervised=True) as fleet:
        if max_inflight:  # the CLI's backpressure only (a smaller trial stays mid-file)
            fleet.env["RXFLEET_MAX_INFLIGHT"] = str(max_inflight)
        run_id, at_kill, first_s = _first_run(fleet, args, kill_at)
        started = time.monotonic()
        again = subprocess.run(_cli(*args), cwd=ROOT, env=fleet.env, capture_output=True, text=True)
        second_s = time.monotonic() - started
        if again.returncode != 0:
            raise SystemExit(f"the same command again failed: {again.stderr}")
        stats = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=120).json()
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        figures = {
            "claims": count,
            "results_at_kill": at_kill,
            "first_run_s": round(first_s, 1),
            "second_run_s": round(second_s, 1),
            "picked_up": f"picking up run {run_id}" in again.stderr,
            "second_run_says": again.stderr.splitlines()[:4],
            "result_rows": len(rows),
            "each_claim_once": sorted(r["claim_id"] for r in rows) == sorted(ids),
            "adjudicated_twice": adjudicated_twice(stats),
            **_ledger(fleet.database_url, run_id),
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=100_000)
    parser.add_argument("--kill-at", type=int, default=15_000)
    parser.add_argument("--max-inflight", type=int, help="RXFLEET_MAX_INFLIGHT for the CLI")
    options = parser.parse_args()
    figures = trial(options.claims, options.kill_at, options.max_inflight)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "producer_kill.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    ok = figures["picked_up"] and figures["each_claim_once"]
    ok = ok and figures["adjudicated_twice"] == 0 and figures["enqueued_twice"] == 0
    ok = ok and figures["positions_ingested"] == options.claims
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
