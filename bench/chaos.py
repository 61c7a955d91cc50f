"""Issue 4's proofs at scale: the gateway misbehaving on purpose, a real
redis-server, the Procfile's processes (cpu worker, two submit workers, beat,
the sandbox gateway), 10k claims per scenario.

    python bench/chaos.py [--claims 10000] [--scenario tokens|throttle|drops|all]

Each scenario prints what it proves, from the gateway's own log and counts and
from the fleet's audit stream; figures also go to bench/out/chaos.json.

* tokens: 5-second tokens, every 200th request revokes the live one. Proves:
  no claim fails for authentication; token fetches <= rotations + 1.
* throttle: 429/503 with Retry-After (seconds and HTTP-date) for 1.5% of keys.
  Proves: no retry of a claim before its Retry-After (gateway log); no request
  passes the fleet's gate during an announced pause (audit), and every request
  the gateway saw start inside a pause passed the gate before it (in flight).
* drops: responses lost after adjudication (1%), connections dropped (1%),
  5 ms latency. Proves: nothing adjudicated twice (per-key counts), every claim
  terminal, and each lost response cost one replay, not a second adjudication.
Every scenario also routes 1% of claims to an unknown BIN/PCN: one 404 request
in all, not one per claim.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procfile import ROOT, procfile_fleet

from rxfleet.claims import synth

OUT = ROOT / "bench" / "out"
SCENARIOS: dict[str, dict[str, Any]] = {
    "tokens": {"seed": 1, "token_lifetime": 5, "revoke_every": 200},
    "throttle": {
        "seed": 2,
        "throttles": [
            {"status": 429, "rate": 0.01, "retry_after": 2, "retry_after_format": "delta"},
            {"status": 503, "rate": 0.005, "retry_after": 2, "retry_after_format": "http-date"},
        ],
    },
    "drops": {
        "seed": 3,
        "drops": [{"rate": 0.01, "after_adjudication": True}, {"rate": 0.01}],
        "latency_ms": 5,
    },
}


def write_claims(path: Path, n: int) -> list[str]:
    rng = random.Random(42)
    ids = []
    with path.open("w") as handle:
        for index in range(n):
            claim = synth._base(rng, index)
            claim["claim_id"] = f"K{index:07d}"
            if index % 100 == 7:
                claim["bin"], claim["pcn"] = "777777", "NOSUCHPCN"
            ids.append(claim["claim_id"])
            handle.write(json.dumps(claim) + "\n")
    return ids


def run_scenario(name: str, claims: Path, count: int) -> dict[str, Any]:
    scenario = Path(tempfile.mkdtemp()) / f"{name}.json"
    scenario.write_text(json.dumps(SCENARIOS[name]))
    with procfile_fleet(submit_workers=2, scenario=scenario) as fleet:
        started = time.monotonic()
        out = Path(fleet.tmp) / "results.jsonl"
        cli = subprocess.run(
            [sys.executable, "-m", "rxfleet.cli", "run", str(claims), "-o", str(out),
             "--timeout", "1200"],
            cwd=ROOT, env=fleet.env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.monotonic() - started
        if cli.returncode != 0:
            raise SystemExit(f"{name}: rxfleet run failed: {cli.stderr}")
        run_id = cli.stdout.split()[1]
        stats = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=30).json()
        client = redis.Redis.from_url(fleet.redis_url, decode_responses=True)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        figures = _common(rows, stats, count, wall)
        figures.update(CHECKS[name](client, run_id, rows, stats))
    return figures


def _common(
    rows: list[dict[str, Any]], stats: dict[str, Any], count: int, wall: float
) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    keys = stats["keys"]
    misses = [r for r in rows if r["reject_codes"] == ["04"]]
    return {
        "claims": len(rows),
        "all_terminal": len(rows) == count and all(r["status"] for r in rows),
        "statuses": statuses,
        "wall_s": round(wall, 1),
        "claims_per_s": round(len(rows) / wall, 1),
        "gateway_requests": stats["requests"],
        "adjudicated_twice": sum(1 for v in keys.values() if v["adjudications"] > 1),
        "route_miss_claims": len(misses),
        "route_miss_requests": stats["by_status"].get("404", 0),
        "rejected_99": sum(1 for r in rows if r["reject_codes"] == ["99"]),
    }


def _tokens(
    client: redis.Redis, run_id: str, rows: list[dict[str, Any]], stats: dict[str, Any]
) -> dict[str, Any]:
    rotations = int(client.hget("rx:token", "version") or 0)
    auth = client.hgetall("rx:token:stats")
    return {
        "token_fetches": stats["token_fetches"],
        "rotations": rotations,
        "fetches_le_rotations_plus_1": stats["token_fetches"] <= rotations + 1,
        "http_401": stats["by_status"].get("401", 0),
        "rej_001": int(auth.get("auth_REJ_001", 0)),
        "rej_004": int(auth.get("auth_REJ_004", 0)),
        "failed_for_auth": sum(
            1 for r in rows if r["status"] != "PAID" and r["reject_codes"] != ["04"]
        ),
    }


def _attempts(client: redis.Redis, run_id: str) -> list[dict[str, Any]]:
    events = (json.loads(d["event"]) for _, d in client.xrange(f"rx:run:{run_id}:audit"))
    return [e for e in events if e["stage"] == "attempt"]


def _throttle(
    client: redis.Redis, run_id: str, rows: list[dict[str, Any]], stats: dict[str, Any]
) -> dict[str, Any]:
    log = [e for e in stats["log"] if e["path"] == "/v1/claims"]
    told = [e for e in log if e.get("not_before")]
    early = 0
    by_key: dict[str, list[dict[str, Any]]] = {}
    for entry in log:
        by_key.setdefault(entry["key"], []).append(entry)
    for entry in told:
        later = [e["started"] for e in by_key[entry["key"]] if e["started"] > entry["finished"]]
        early += bool(later) and min(later) < entry["not_before"]
    pauses = [json.loads(p) for p in client.lrange("rx:gateway:pauses", 0, -1)]
    attempts = _attempts(client, run_id)
    gated = sum(1 for p in pauses for a in attempts if p["set_at"] < a["gate_at"] < p["until"])
    inside = [(p, e) for p in pauses for e in log if p["set_at"] < e["started"] < p["until"]]
    gates: dict[str, list[float]] = {}
    for a in attempts:
        gates.setdefault(a["claim_id"], []).append(a["gate_at"])
    not_in_flight = sum(
        1 for p, e in inside if not any(g <= p["set_at"] for g in gates.get(e["key"], []))
    )
    return {
        "told_to_wait": len(told),
        "retries_before_retry_after": early,
        "fleet_pauses": len(pauses),
        "attempts_gated_during_pause": gated,
        "gateway_starts_during_pause": len(inside),
        "of_which_not_in_flight": not_in_flight,
    }


def _drops(
    client: redis.Redis, run_id: str, rows: list[dict[str, Any]], stats: dict[str, Any]
) -> dict[str, Any]:
    keys = stats["keys"]
    return {
        "dropped": stats["by_status"].get("dropped", 0),
        "replayed_answers": sum(1 for e in stats["log"] if e.get("replayed")),
        "keys_with_more_requests_than_adjudications": sum(
            1 for v in keys.values() if v["requests"] > v["adjudications"]
        ),
    }


CHECKS = {"tokens": _tokens, "throttle": _throttle, "drops": _drops}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--scenario", choices=[*SCENARIOS, "all"], default="all")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    claims = OUT / f"chaos-{args.claims}.jsonl"
    write_claims(claims, args.claims)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    results = {}
    for name in names:
        results[name] = run_scenario(name, claims, args.claims)
        print(name, json.dumps(results[name], indent=1), flush=True)
    (OUT / "chaos.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
