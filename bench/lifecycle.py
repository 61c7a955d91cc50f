"""Issue 17's must-show at scale: two days of a claim's life on the Procfile's fleet.

    python -m bench.lifecycle [--claims 2000] [--faults]

Day 1: ``--claims`` JSON Lines claims (5% an unknown group: R 06; 2% an excluded
drug: the sandbox's formulary) and an X12 837 of six drug lines (from
demo.drug.example10.1.837). Day 2, another file and run: the 06 claims corrected
(same claim id, the right group), 100 paid claims reversed (B2), 50 rebilled (B3),
two X12 lines voided (CLM05-3 = 8) and two replaced (7). ``--faults``: during day 2
a submit worker is SIGKILLed once and Redis (AOF) killed and restarted once.

Checks (exit 1 when any fails): every claim's final state (day 2 over day 1) as
expected; no Idempotency-Key adjudicated twice and no content under two keys; the
fleet's books (last state PAID: claim and ``amount_paid``) equal the sandbox's
``GET /v1/books`` per claim and in total to the cent; day 1 again with ``--new``: no
new adjudication and the same results rows (``attempts`` aside: per run). Figures
go to bench/out/lifecycle.json (``plain`` and ``faults``). The lifecycle integration
test proves the same at 40 claims on the in-process fleet
(tests/integration/fleet/test_lifecycle.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from bench.chaos import Chaos, _scenario_file
from bench.harness import ROOT, AofRedis, Fleet, procfile_fleet
from rxfleet.claims import synth

OUT = ROOT / "bench" / "out"
EXAMPLE = ROOT / "tests" / "resources" / "x12" / "837_005010X222A2" / "demo.drug.example10.1.837"
EXCLUDED = {"ndc": "00069-4220-30", "quantity_dispensed": 6, "days_supply": 30}  # R 70
X12_LINES, X12_VOID, X12_REPLACE = 6, (1, 2), (3, 4)
REVERSALS, REBILLS = 100, 50
RUN_SPECIFIC = ("attempts",)  # requests made in this run: a replay is a request
Row = dict[str, Any]


@dataclass
class Plan:
    """The two days' inputs and what each JSON Lines claim must end as."""

    day1: list[Path]
    day2: list[Path]
    expected: dict[str, str] = field(default_factory=dict)  # claim id -> final status


def _cid(i: int) -> str:
    return f"LC-{i:05d}"


def _day1_claims(path: Path, n: int) -> tuple[dict[str, Row], dict[str, str], list[str]]:
    """``n`` claims; the claims, the right groups of the 06 ones, the excluded ids."""
    right: dict[str, str] = {}
    excluded: list[str] = []

    def edit(i: int, claim: Row) -> None:
        if i % 20 == 3:
            right[claim["claim_id"]], claim["group_id"] = claim["group_id"], "NOSUCHGRP"
        elif i % 50 == 7:
            claim.update(EXCLUDED)
            excluded.append(claim["claim_id"])

    synth.write_claims(path, n, seed="lifecycle-bench", claim_id=_cid, edit=edit)
    claims = [json.loads(line) for line in path.read_text().splitlines()]
    return {c["claim_id"]: c for c in claims}, right, excluded


def _x12(path: Path, frequency: dict[int, str]) -> Path:
    """``X12_LINES`` claims (CLM01 ZQLIFE01 ...) of one drug line each, each its own
    prescription (REF*XZ); line ``k``'s CLM05-3 is ``frequency.get(k, "1")``; only
    the lines in ``frequency`` when it is not empty (day 2)."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text.replace("SBR*P*18*GRP01020102*", "SBR*P*18*GRP100*")  # a group the sandbox has
    start, end = text.index("CLM*CLMNO12345*"), text.index("SE*")
    block = text[start:end]
    lines = sorted(frequency) or range(1, X12_LINES + 1)
    claims = "".join(_x12_claim(block, k, frequency.get(k, "1")) for k in lines)
    path.write_text(synth.recount_se(text[:start] + claims + text[end:]), encoding="utf-8")
    return path


def _x12_claim(block: str, k: int, frequency: str) -> str:
    block = block.replace("CLM*CLMNO12345*", f"CLM*ZQLIFE{k:02d}*")
    block = block.replace("11:B:1", f"11:B:{frequency}")
    return block.replace("CTP****10.00*ML~", f"CTP****10.00*ML~REF*XZ*88{k:05d}~")


def build(tmp: Path, n: int) -> Plan:
    """Write both days' files; the expected final state of every JSON Lines claim."""
    claims, right, excluded = _day1_claims(tmp / "day1.jsonl", n)
    plan = Plan([tmp / "day1.jsonl", _x12(tmp / "day1.837", {})], [tmp / "day2.jsonl"])
    plan.expected = {cid: "PAID" for cid in claims}
    plan.expected.update({cid: "REJECTED" for cid in (*right, *excluded)})
    paid = [cid for cid in claims if plan.expected[cid] == "PAID"]
    reverse, rebill = paid[:REVERSALS], paid[REVERSALS : REVERSALS + REBILLS]
    lines = [{**claims[cid], "group_id": group} for cid, group in right.items()]
    lines += [synth.reversal(claims[cid]) for cid in reverse]
    lines += [{**claims[cid], "transaction_code": "B3"} for cid in rebill]
    (tmp / "day2.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    plan.expected.update({cid: "PAID" for cid in (*right, *rebill)})
    plan.expected.update({cid: "REVERSED" for cid in reverse})
    frequency = {k: "8" for k in X12_VOID} | {k: "7" for k in X12_REPLACE}
    plan.day2.append(_x12(tmp / "day2.837", frequency))
    return plan


def _run(fleet: Fleet, inputs: list[Path], out: Path, *flags: str) -> tuple[int, float, list[Row]]:
    """``rxfleet run INPUTS -o OUT``: its exit code, seconds and results rows."""
    started = time.monotonic()
    done = fleet.cli("run", *map(str, inputs), "-o", str(out), *flags, timeout=900)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        print(f"  rxfleet run exit {done.returncode}: {done.stderr[-600:]}", flush=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return done.returncode, seconds, rows


def _final_states(plan: Plan, day1: list[Row], day2: list[Row]) -> dict[str, Any]:
    """Every claim's last state against the expected (X12 lines by their day 2 transaction)."""
    x12_1 = {r["claim_id"] for r in day1 if str(r["claim_id"]).startswith("X12-")}
    x12_2 = {r["claim_id"]: r for r in day2 if str(r["claim_id"]).startswith("X12-")}
    expected = dict(plan.expected)
    expected.update({cid: "PAID" for cid in x12_1})
    by_transaction = {"B2": "REVERSED", "B3": "PAID"}
    expected.update({c: by_transaction.get(r["transaction_code"], "?") for c, r in x12_2.items()})
    last = {r["claim_id"]: r for r in day1} | {r["claim_id"]: r for r in day2}
    wrong = sorted(c for c in expected.keys() | last.keys()
                   if last.get(c, {}).get("status") != expected.get(c))  # fmt: skip
    counts = {s: sum(1 for r in last.values() if r["status"] == s) for s in
              ("PAID", "REJECTED", "REVERSED")}  # fmt: skip
    return {
        "claims": len(last), "final_state_wrong": len(wrong), "wrong_examples": [
            (c, _brief(last.get(c)), expected.get(c)) for c in wrong[:5]],
        "x12_lines_day2_of_day1": set(x12_2) <= x12_1 and len(x12_2) == 4,
        **{s.lower(): n for s, n in counts.items()}, "last": last,
    }  # fmt: skip


def _brief(row: Row | None) -> str:
    """A row's status, transaction, reject codes and reason (no PHI in a row)."""
    if row is None:
        return "no row"
    fields = ("status", "transaction_code", "reject_codes", "reason", "errors")
    return " ".join(str(row[k]) for k in fields)


def _books(fleet: Fleet, last: dict[str, Row]) -> dict[str, Any]:
    """The fleet's paid claims against the sandbox's books, per claim and in total."""
    paid = {c: Decimal(str(r["amount_paid"])) for c, r in last.items() if r["status"] == "PAID"}
    books = requests.get(fleet.gateway + "/v1/books", timeout=60).json()
    theirs = {e["claim_id"]: Decimal(str(e["amount_paid"])) for e in books["claims"]}
    fleet_total = sum(paid.values(), Decimal(0))
    sandbox_total = Decimal(books["total_paid_cents"]) / 100
    return {
        "books_claims_fleet": len(paid), "books_claims_sandbox": len(theirs),
        "books_total_fleet": str(fleet_total.quantize(Decimal("0.01"))),
        "books_total_sandbox": str(sandbox_total.quantize(Decimal("0.01"))),
        "books_per_claim_equal": paid == theirs, "books_total_equal": fleet_total == sandbox_total,
    }  # fmt: skip


def _twice(stats: dict[str, Any]) -> int:
    """Keys adjudicated more than once, and contents adjudicated under two keys."""
    keys = sum(1 for v in stats["keys"].values() if v["adjudications"] > 1)
    return keys + int(stats["same_content"])


def _stats(fleet: Fleet) -> dict[str, Any]:
    stats: dict[str, Any] = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=60).json()
    return stats


def _comparable(rows: list[Row]) -> list[tuple[str, ...]]:
    return sorted(tuple(f"{k}={r[k]}" for k in sorted(r) if k not in RUN_SPECIFIC) for r in rows)


def _day2(fleet: Fleet, plan: Plan, tmp: Path, faults: bool) -> tuple[int, float, list[Row], Any]:
    """Day 2's run; with ``faults`` a submit worker SIGKILLed and Redis killed and
    restarted (AOF) while it runs."""
    chaos = None
    if faults:
        chaos = Chaos(fleet, 0, [(0.8, "submit1"), (1.2, "redis")], time.monotonic())
    code, seconds, rows = _run(fleet, plan.day2, tmp / "day2.out.jsonl")
    events = []
    if chaos is not None:
        chaos.finish()
        events = [{k: v for k, v in e.items() if k != "at"} for e in chaos.events]
    return code, seconds, rows, events


def two_days(n: int, faults: bool) -> dict[str, Any]:
    """Both days, the checks and the re-run of day 1; the figures."""
    OUT.mkdir(exist_ok=True)
    scenario = _scenario_file({"seed": 17, "latency_ms": 15})
    server = AofRedis(binary=shutil.which("redis-server"))
    with procfile_fleet(scenario=scenario, server=server, supervised=True) as fleet:
        plan = build(fleet.tmp, n)
        code1, s1, day1 = _run(fleet, plan.day1, fleet.tmp / "day1.out.jsonl")
        code2, s2, day2, events = _day2(fleet, plan, fleet.tmp, faults)
        figures: dict[str, Any] = {"claims_day1": len(day1), "claims_day2": len(day2),
                                   "day1_s": round(s1, 1), "day2_s": round(s2, 1),
                                   "day1_exit": code1, "day2_exit": code2, "faults": faults,
                                   "chaos": events}  # fmt: skip
        states = _final_states(plan, day1, day2)
        figures.update(_books(fleet, states.pop("last")), **states)
        before = _stats(fleet)
        figures["adjudicated_twice"] = _twice(before)
        code3, s3, again = _run(fleet, plan.day1, fleet.tmp / "again.out.jsonl", "--new")
        figures.update(rerun_exit=code3, rerun_s=round(s3, 1),
                       new_adjudications=_stats(fleet)["adjudications"] - before["adjudications"],
                       rerun_rows_identical=_comparable(again) == _comparable(day1))  # fmt: skip
    return figures


def failures(f: dict[str, Any]) -> list[str]:
    """The checks that failed, by name."""
    checks = {
        "exit codes 0": f["day1_exit"] == f["day2_exit"] == f["rerun_exit"] == 0,
        "final states": f["final_state_wrong"] == 0,
        "X12 day 2 lines are day 1's": f["x12_lines_day2_of_day1"],
        "nothing adjudicated twice": f["adjudicated_twice"] == 0,
        "books per claim": f["books_per_claim_equal"],
        "books total": f["books_total_equal"],
        "re-run: no new adjudication": f["new_adjudications"] == 0,
        "re-run: same rows": f["rerun_rows_identical"],
    }
    if f["faults"]:
        checks["both faults during day 2"] = len(f["chaos"]) == 2
    return [name for name, ok in checks.items() if not ok]


def table(f: dict[str, Any]) -> str:
    rows = [
        ("claims (day 1 / day 2 / distinct)", f"{f['claims_day1']} / {f['claims_day2']} / "
                                               f"{f['claims']}"),
        ("seconds (day 1 / day 2 / re-run)", f"{f['day1_s']} / {f['day2_s']} / {f['rerun_s']}"),
        ("final: paid / rejected / reversed", f"{f['paid']} / {f['rejected']} / {f['reversed']}"),
        ("final state not as expected", f["final_state_wrong"]),
        ("books claims fleet / sandbox", f"{f['books_claims_fleet']} / "
                                         f"{f['books_claims_sandbox']}"),
        ("books total fleet / sandbox", f"{f['books_total_fleet']} / {f['books_total_sandbox']}"),
        ("books equal per claim / total", f"{f['books_per_claim_equal']} / "
                                          f"{f['books_total_equal']}"),
        ("adjudicated twice", f["adjudicated_twice"]),
        ("new adjudications on re-run", f["new_adjudications"]),
        ("re-run rows identical", f["rerun_rows_identical"]),
        ("faults in day 2", ", ".join(f"{e['what']} at {e['t_s']} s" for e in f["chaos"]) or "-"),
    ]  # fmt: skip
    return "\n".join(f"  {name:<36} {value}" for name, value in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=2000)
    parser.add_argument("--faults", action="store_true", help="kill a worker and Redis in day 2")
    args = parser.parse_args()
    figures = two_days(args.claims, args.faults)
    failed = failures(figures)
    figures["failed"] = failed
    OUT.mkdir(exist_ok=True)
    path = OUT / "lifecycle.json"  # one key a mode, as chaos.json has one a scenario
    merged = json.loads(path.read_text()) if path.exists() else {}
    merged["faults" if args.faults else "plain"] = figures
    path.write_text(json.dumps(merged, indent=2) + "\n")
    print(f"lifecycle, {args.claims} claims{' with faults' if args.faults else ''}:")
    print(table(figures))
    print("FAILED: " + "; ".join(failed) if failed else "all checks hold")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
