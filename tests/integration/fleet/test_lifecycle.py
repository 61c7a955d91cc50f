"""A claim's life over two days on the in-process fleet: billed, corrected,
reversed, rebilled; every submission adjudicated once under its own
Idempotency-Key, and the fleet's books equal the sandbox's to the cent.

Day 1 bills 40 claims, 4 with an unknown group (R 06). Day 2 (another file, another
run) corrects those 4 (same claim id, the right group: new content, a new key, so
paid), reverses 5 paid claims (B2), rebills 3 (B3) and reverses one never billed
(R 87), and bills and reverses a new claim in the same file (the reversal waits
for its billing's answer: ordering per claim id). Then day 1's file again in a new
run: every key replayed, no new adjudication, the same results (docs/protocol.md,
'The Idempotency-Key').
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rxfleet.claims import synth
from tests.integration.fleet.fleet_support import Fleet

pytestmark = pytest.mark.integration

WRONG, REVERSE, REBILL = range(0, 4), range(10, 15), range(20, 23)
NEVER_BILLED = "L-NEVER"
SAME_DAY = "L-SAMEDAY"


def _cid(i: int) -> str:
    return f"L-{i:03d}"


def _day1(path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """40 claims, the first 4 with an unknown group; the claims and their right groups."""
    right: dict[str, str] = {}

    def wrong_group(i: int, claim: dict[str, Any]) -> None:
        if i in WRONG:
            right[claim["claim_id"]], claim["group_id"] = claim["group_id"], "NOSUCHGRP"

    synth.write_claims(path, 40, seed="lifecycle", claim_id=_cid, edit=wrong_group)
    claims = [json.loads(line) for line in path.read_text().splitlines()]
    return {c["claim_id"]: c for c in claims}, right


def _day2(path: Path, claims: dict[str, dict[str, Any]], right: dict[str, str]) -> None:
    lines = [{**claims[cid], "group_id": group} for cid, group in right.items()]
    lines += [synth.reversal(claims[_cid(i)]) for i in REVERSE]
    lines += [{**claims[_cid(i)], "transaction_code": "B3"} for i in REBILL]
    never = {**claims[_cid(39)], "claim_id": NEVER_BILLED, "rx_number": "7999999"}
    lines.append(synth.reversal(never))
    fresh = {**claims[_cid(38)], "claim_id": SAME_DAY, "rx_number": "7888888"}
    lines += [fresh, synth.reversal(fresh)]  # billed, then reversed, in one batch
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def _by_claim(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["claim_id"]): r for r in rows}


def _answers(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    fields = ("claim_id", "status", "reject_codes", "amount_paid", "authorization_number")
    return sorted(tuple(str(r[f]) for f in fields) for r in rows)


def test_bill_correct_reverse_rebill_then_replay_day_one(fleet: Fleet, tmp_path: Path) -> None:
    fleet.reset()
    claims, right = _day1(tmp_path / "day1.jsonl")
    _day2(tmp_path / "day2.jsonl", claims, right)
    day1 = fleet.results(fleet.run(tmp_path / "day1.jsonl", batch_size=10).run_id)
    first = _by_claim(day1)
    assert {cid for cid, r in first.items() if r["reject_codes"] == ["06"]} == set(right)
    assert sum(r["status"] == "PAID" for r in day1) == 36

    rows = fleet.results(fleet.run(tmp_path / "day2.jsonl", batch_size=10).run_id)
    assert [r["status"] for r in rows if r["claim_id"] == SAME_DAY] == ["PAID", "REVERSED"]
    second = _by_claim(rows)
    assert all(second[cid]["status"] == "PAID" for cid in right)  # corrected: a new key
    assert {second[_cid(i)]["status"] for i in REVERSE} == {"REVERSED"}
    assert {second[_cid(i)]["status"] for i in REBILL} == {"PAID"}
    assert (second[NEVER_BILLED]["status"], second[NEVER_BILLED]["reject_codes"]) == (
        "REJECTED",
        ["87"],
    )

    stats = fleet.gateway.stats()
    assert all(v["adjudications"] <= 1 for v in stats["keys"].values()), "a key twice"
    assert stats["same_content"] == 0, "one content adjudicated under two keys"
    assert stats["adjudications"] == 40 + len(rows)

    latest = {**{c: r for c, r in first.items() if r["status"] == "PAID"}, **second}
    paid = {c: r for c, r in latest.items() if r["status"] == "PAID"}
    books = fleet.gateway.books()
    assert {c["claim_id"] for c in books["claims"]} == set(paid)
    assert len(paid) == 36 - len(REVERSE) + len(right)
    total = sum((Decimal(str(r["amount_paid"])) for r in paid.values()), Decimal(0))
    assert total == Decimal(books["total_paid_cents"]) / 100

    again = fleet.results(fleet.run(tmp_path / "day1.jsonl", batch_size=10).run_id)
    assert fleet.gateway.stats()["adjudications"] == stats["adjudications"]  # all replayed
    assert _answers(again) == _answers(day1)
