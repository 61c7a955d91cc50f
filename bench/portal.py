"""Issue 18's must-show: a payer portal of pending claims drained by ``rxfleet sync``
on the Procfile fleet.

    python -m bench.portal [--claims 20000] [--faults] [--rate-limit 20] [--page 500]

The sandbox gateway is also the portal (``--claims`` payable claims, ``--rate-limit``
requests a second, 429 above it); the Procfile's processes (gateway, cpu, submit,
beat, and the ``sync`` line) run under a supervisor on an AOF Redis. ``--faults``:
``sync``, a submit worker and Redis are each SIGKILLed once mid-stream (at 20%, 45%
and 70% of the claims recorded; Redis restarted from its AOF after 2 s).

Checks (exit 1 when any fails): every claim recorded exactly once, in the portal's
order, with ``source`` ``portal:<cursor>``; acknowledged exactly once, in order, each
after its result was recorded; no acknowledgement ahead of what was listed; no claim
adjudicated twice; no 429 when the faults leave the pacing alone. Figures go to
bench/out/portal.json (``plain`` and ``faults``). The integration tests prove the
same at 120 claims (tests/integration/portal/test_sync.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from typing import Any

import psycopg
import requests

from bench.chaos import Chaos, _scenario_file
from bench.harness import ROOT, AofRedis, Fleet, adjudicated_twice, procfile_fleet, wait_for
from rxfleet.stores.portal import portal_id

OUT = ROOT / "bench" / "out"
#: The fleet holds at most 2,000 claims (the sync pulls as it drains: a kill of ``sync``
#: lands mid-pull); a killed sync's lease lasts 5 s; lost claims are looked for after 10 s.
SYNC_ENV = {"RXFLEET_MAX_INFLIGHT": "2000", "RXFLEET_SYNC_LEASE": "5",
            "RXFLEET_SYNC_RECOVER_SECONDS": "10", "RXFLEET_SWEEP_INTERVAL": "5",
            "RXFLEET_STALL_SECONDS": "30"}  # fmt: skip


def portal_stats(url: str) -> dict[str, Any]:
    """The sandbox portal's counters, with every claim's listing and acknowledgement."""
    stats: dict[str, Any] = requests.get(f"{url}/v1/_sandbox/portal?detail=1", timeout=60).json()
    return stats


def recorded(database_url: str, portal: str) -> list[tuple[str, str, float]]:
    """(claim id, result source, recorded at) of each result of ``portal``'s claims, in
    the portal's order (a claim recorded twice would appear twice)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """SELECT r.claim_id, r.source, extract(epoch FROM r.recorded_at)
            FROM portal_claims p JOIN results r ON r.run_id = p.run_id AND r.seq = p.seq
            WHERE p.portal = %s ORDER BY p.pos""",
            (portal,),
        ).fetchall()
    return [(str(c), str(s), float(t)) for c, s, t in rows]


def verdict(fleet: Fleet, url: str) -> dict[str, Any]:
    """What the portal, the system of record and the gateway say of ``url``'s claims."""
    stats = portal_stats(url)
    claims = stats.pop("claims")
    rows = recorded(fleet.database_url, portal_id(url))
    ids = [c["claim_id"] for c in claims]
    times = {claim: at for claim, _, at in rows}
    gateway = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=60).json()
    return {
        **stats,
        "recorded": len(rows),
        "recorded_once_in_order": [c for c, _, _ in rows] == ids,
        "sources_are_cursors": [s for _, s, _ in rows] == [f"portal:{c['cursor']}" for c in claims],
        "acked_once_in_order": stats["acked"] == stats["total"] and stats["acks_ahead"] == 0,
        "acked_after_record": all(_after(c, times) for c in claims),
        "adjudicated_twice": adjudicated_twice(gateway),
    }


def _after(claim: dict[str, Any], recorded_at: dict[str, float]) -> bool:
    """Whether the claim was acknowledged, and not before its result was recorded."""
    at, claim_id = claim["acked_at"], claim["claim_id"]
    return at is not None and claim_id in recorded_at and at >= recorded_at[claim_id]


def failures(f: dict[str, Any], faults: bool) -> list[str]:
    checks = {
        "every claim recorded once, in order": f["recorded_once_in_order"],
        "sources portal:<cursor>": f["sources_are_cursors"],
        "acknowledged once, in order": f["acked_once_in_order"],
        "no acknowledgement ahead of its record": f["acked_after_record"],
        "nothing adjudicated twice": f["adjudicated_twice"] == 0,
    }
    if not faults:
        checks["no 429 (paced by the headers)"] = f["throttled"] == 0
    else:
        checks["sync, submit and Redis each killed once"] = len(f["chaos"]) == 3
    return [name for name, ok in checks.items() if not ok]


def drain(n: int, faults: bool, rate_limit: int, page: int) -> dict[str, Any]:
    """The fleet, the portal of ``n`` claims, ``sync`` until every claim is acknowledged."""
    OUT.mkdir(exist_ok=True)
    portal = {"pending": n, "seed": 18, "rate_limit": rate_limit, "rate_window": 1.0}
    scenario = _scenario_file({"seed": 18, "portal": portal})
    server = AofRedis(binary=shutil.which("redis-server"))
    env = {**SYNC_ENV, "RXFLEET_SYNC_PAGE": str(page), "RXFLEET_BATCH_SIZE": str(page)}
    with procfile_fleet(scenario=scenario, server=server, supervised=True, extra_env=env) as fleet:
        started = time.monotonic()
        fleet.start("sync", RXFLEET_PORTAL_URL=fleet.gateway)
        plan = [(0.2, "sync"), (0.45, "submit1"), (0.7, "redis")] if faults else []
        chaos = Chaos(fleet, n, plan, started, by_time=False)
        wait_for(lambda: portal_stats(fleet.gateway)["pending"] == 0, 120 + n / 10, "drained")
        seconds = time.monotonic() - started
        chaos.finish()
        figures = verdict(fleet, fleet.gateway)
        events = [{k: v for k, v in e.items() if k != "at"} for e in chaos.events]
        restarts = sum(1 for _, name in fleet.restarts if name == "sync")
        shutil.copy(fleet.tmp / "sync.log", OUT / f"portal-sync{'-faults' if faults else ''}.log")
        figures.update(claims=n, seconds=round(seconds, 1), claims_per_s=round(n / seconds, 1),
                       rate_limit=rate_limit, page=page, faults=faults, chaos=events,
                       sync_restarts=restarts)  # fmt: skip
    return figures


def table(f: dict[str, Any]) -> str:
    rows = [
        ("claims / seconds / claims/s", f"{f['claims']} / {f['seconds']} / {f['claims_per_s']}"),
        ("portal requests (pulls / acks)", f"{f['requests']} ({f['pull_requests']} / "
                                           f"{f['ack_requests']})"),
        ("429s (rate limit per s)", f"{f['throttled']} ({f['rate_limit']})"),
        ("claims listed twice (pulled again)", f["pulled_twice"]),
        ("recorded / once, in order", f"{f['recorded']} / {f['recorded_once_in_order']}"),
        ("acked / once, in order / after record", f"{f['acked']} / {f['acked_once_in_order']} / "
                                                  f"{f['acked_after_record']}"),
        ("adjudicated twice", f["adjudicated_twice"]),
        ("faults", ", ".join(f"{e['what']} at {e['t_s']} s ({e['recorded']} recorded)"
                             for e in f["chaos"]) or "-"),
    ]  # fmt: skip
    return "\n".join(f"  {name:<40} {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--claims", type=int, default=20_000)
    parser.add_argument("--faults", action="store_true", help="kill sync, a submit worker, Redis")
    parser.add_argument("--rate-limit", type=int, default=20, help="portal requests a second")
    parser.add_argument("--page", type=int, default=500, help="claims a pull (RXFLEET_SYNC_PAGE)")
    args = parser.parse_args()
    figures = drain(args.claims, args.faults, args.rate_limit, args.page)
    failed = failures(figures, args.faults)
    figures["failed"] = failed
    path = OUT / "portal.json"
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged["faults" if args.faults else "plain"] = figures
    path.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"portal sync, {args.claims} claims{' with faults' if args.faults else ''}:")
    print(table(figures))
    print("FAILED: " + "; ".join(failed) if failed else "all checks hold")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
