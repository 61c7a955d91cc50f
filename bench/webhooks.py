"""Formulary webhooks on the Procfile fleet: propagation and a burst of signed events.

    python -m bench.webhooks [--events 100] [--rate 1000] [--seconds 30]
        [--parts propagation,burst] [--out bench/out/webhooks.json]

(a) propagation: the Procfile's gateway, cpu, submit, beat and webhooks processes; a
stream of claims (``rxfleet enqueue``, batch size 10) over 100 NDCs the crosswalk file
does not know, made covered by a first event. Then ``--events`` events, one every
0.3 s, each turning one of them non-covered. Figures: for each event, seconds from
its 204 (this process's clock) to the first claim the crosswalk link checked against
that version or a later one (its ``mapped`` audit step: ``at`` and ``formulary`` in
``detail``, the workers' clocks: one machine); median and max (target: at most 1 s).
Checked: every claim of a flipped NDC checked at a version at or after its flip is
``REJECTED`` ``70`` reason ``FORMULARY``, never sent.

(b) burst: only the gateway and one webhooks process; ``--rate`` signed events a
second for ``--seconds`` (aiohttp, sent in sequence order, many in flight, so they
arrive out of order), one change each; among them, every 100th request a forged
signature, a stale one (400 s old) and a replay of an event already answered. Checked
from the database: every event kept once and applied once (``formulary_entries``: one
row per event), applied in sequence order (``applied_rank`` ordered as ``sequence``),
none of the forged or stale events stored; the webhook's counters. Figures: events/s
offered and answered 204, answer latency (median, P99), the last event's lag from
publication to applied.

Exit 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import requests

from bench.harness import Fleet, http_up, procfile_fleet, wait_for
from rxfleet.claims import synth
from rxfleet.embedded.redis_server import free_port
from rxfleet.gateway.sandbox.publisher import change, formulary_event, send, signed
from rxfleet.gateway.signing import HEADER

SECRET = "bench-webhook-secret-0123456789abcdef"
GPI = "39400010100310"
NDCS = [f"551500{index:05d}" for index in range(1, 101)]  # not in the crosswalk file


def _env(port: int) -> dict[str, str]:
    return {"RXFLEET_WEBHOOK_SECRET": SECRET, "RXFLEET_WEBHOOK_PORT": str(port)}


def _start_webhooks(fleet: Fleet, port: int) -> str:
    fleet.start("webhooks")
    url = f"http://127.0.0.1:{port}/v1/formulary"
    wait_for(lambda: http_up(url + "/version"), 60, "the webhooks process")
    return url


def _rows(fleet: Fleet, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(fleet.database_url, connect_timeout=5) as conn:
        return conn.execute(query, params).fetchall()


# (a) propagation -----------------------------------------------------------------------


def _stream(fleet: Fleet, claims: int) -> str:
    path = fleet.tmp / "stream.jsonl"

    def edit(index: int, claim: dict[str, Any]) -> None:
        claim["ndc"] = NDCS[index % len(NDCS)]

    synth.write_claims(path, claims, seed="webhooks", claim_id=lambda i: f"WH{i:07d}", edit=edit)
    return str(path)


def _flip_all(url: str, events: int) -> list[tuple[int, float, str]]:
    """One event a NDC (sequence 2 ...), one every 0.3 s: (version, 204 time, NDC)."""
    secret = SECRET.encode()
    flips = []
    with requests.Session() as session:
        for index in range(events):
            ndc, version = NDCS[index % len(NDCS)], index + 2
            event = formulary_event(version, [change(ndc, GPI, covered=False)])
            status = send(url, secret, event, session=session)
            flips.append((version, time.time(), ndc))
            assert status == 204, f"event {version}: HTTP {status}"
            time.sleep(0.3)
    return flips


def _first_checks(fleet: Fleet, run_id: str) -> list[tuple[float, int]]:
    rows = _rows(fleet, "SELECT extract(epoch FROM at), (detail->>'formulary')::int FROM"
                 " audit_events WHERE run_id = %s AND stage = 'mapped'", (run_id,))  # fmt: skip
    return sorted((float(at), int(version)) for at, version in rows)


def _not_rejected(
    fleet: Fleet, run_id: str, flips: list[tuple[int, float, str]]
) -> tuple[int, int]:
    """Claims of a flipped NDC checked at or after its flip that are not 70 FORMULARY."""
    flipped = {ndc: version for version, _, ndc in flips}
    rows = _rows(fleet, "SELECT r.ndc11, (a.detail->>'formulary')::int, r.reject_codes, r.reason"
                 " FROM results r JOIN audit_events a USING (run_id, seq) WHERE r.run_id = %s"
                 " AND a.stage = 'mapped'", (run_id,))  # fmt: skip
    late = [r for r in rows if r[0] in flipped and r[1] >= flipped[r[0]]]
    return sum(1 for r in late if r[2] != ["70"] or r[3] != "FORMULARY"), len(late)


def propagation(events: int) -> dict[str, Any]:
    port = free_port()
    with procfile_fleet(extra_env=_env(port)) as fleet:
        url = _start_webhooks(fleet, port)
        covered = [change(ndc, GPI, covered=True) for ndc in NDCS]
        assert send(url, SECRET.encode(), formulary_event(1, covered)) == 204
        producer = fleet.popen("enqueue", _stream(fleet, 60_000), "--batch-size", "10")
        wait_for(lambda: fleet.results_count() > 0, 120, "the first claims recorded")
        flips = _flip_all(url, events)
        run_id = _run_id(fleet)
        fleet.cli("abort", run_id)
        producer.wait(120)
        wait_for(lambda: _finished(fleet, run_id), 300, "the run ended")
        checks = _first_checks(fleet, run_id)
        wrong, late = _not_rejected(fleet, run_id, flips)
    lags = [_first_after(checks, version) - at for version, at, _ in flips]
    found = [lag for lag in lags if lag == lag]  # NaN: no claim checked at that version
    return {
        "events": events, "measured": len(found),
        "median_s": round(statistics.median(found), 3) if found else None,
        "max_s": round(max(found), 3) if found else None,
        "claims_checked_after_a_flip": late, "of_them_not_rejected_70": wrong,
        "ok": len(found) == events and wrong == 0 and max(found, default=9) <= 1.0,
    }  # fmt: skip


def _run_id(fleet: Fleet) -> str:
    rows = _rows(fleet, "SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1")
    return str(rows[0][0])


def _finished(fleet: Fleet, run_id: str) -> bool:
    rows = _rows(fleet, "SELECT finished_at FROM runs WHERE run_id = %s", (run_id,))
    return bool(rows and rows[0][0] is not None)


def _first_after(checks: list[tuple[float, int]], version: int) -> float:
    return next((at for at, seen in checks if seen >= version), float("nan"))


# (b) burst -----------------------------------------------------------------------------


async def _post(session: aiohttp.ClientSession, url: str, body: bytes, signature: str) -> int:
    async with session.post(url, data=body, headers={HEADER: signature}) as answer:
        await answer.read()
        return answer.status


async def _offer(url: str, rate: int, seconds: int) -> dict[str, Any]:
    secret, total = SECRET.encode(), rate * seconds
    answers: dict[str, list[int]] = {"genuine": [], "forged": [], "stale": [], "replayed": []}
    latencies: list[float] = []
    sent: list[tuple[bytes, str]] = []
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(kind: str, body: bytes, signature: str) -> None:
            started = time.perf_counter()
            answers[kind].append(await _post(session, url, body, signature))
            if kind == "genuine":
                latencies.append(time.perf_counter() - started)

        tasks, start = [], time.perf_counter()
        for index in range(total):
            while time.perf_counter() - start < index / rate:
                await asyncio.sleep(0.002)
            event = formulary_event(index + 1, [change(NDCS[index % 100], GPI, tier=index % 5)])
            body, signature = signed(secret, event)
            sent.append((body, signature))
            tasks.append(asyncio.create_task(one("genuine", body, signature)))
            if index % 100 == 50:
                tasks += _bad(one, secret, index, sent)
        offered = time.perf_counter() - start
        await asyncio.gather(*tasks)
        answered = time.perf_counter() - start
    return {"answers": answers, "latencies": latencies, "offered_s": offered,
            "answered_s": answered, "total": total}  # fmt: skip


def _bad(one: Any, secret: bytes, index: int, sent: list[tuple[bytes, str]]) -> list[Any]:
    bogus = formulary_event(10**9 + index, [change(NDCS[0], GPI)], event_id=f"bad-{index}")
    body, _ = signed(secret, bogus)
    _, forged = signed(b"not-the-payers-secret-0123456789", bogus)
    stale_body, stale = signed(secret, {**bogus, "event_id": f"stale-{index}"},
                               int(time.time()) - 400)  # fmt: skip
    return [asyncio.create_task(one("forged", body, forged)),
            asyncio.create_task(one("stale", stale_body, stale)),
            asyncio.create_task(one("replayed", *sent[index - 25]))]  # fmt: skip


def _burst_checks(fleet: Fleet, total: int) -> dict[str, Any]:
    events = _rows(fleet, "SELECT sequence, applied_rank, event_id FROM formulary_events"
                   " ORDER BY applied_rank")  # fmt: skip
    entries = _rows(fleet, "SELECT count(*), count(DISTINCT version) FROM formulary_entries")[0]
    lag = _rows(fleet, "SELECT extract(epoch FROM applied_at - published_at) FROM"
                " formulary_events ORDER BY sequence DESC LIMIT 1")  # fmt: skip
    sequences = [row[0] for row in events]
    return {
        "kept": len(events), "applied": sum(1 for r in events if r[1] is not None),
        "entries": entries[0], "versions": entries[1],
        "in_order": sequences == list(range(1, total + 1)),
        "bad_kept": sum(1 for r in events if str(r[2]).startswith(("bad-", "stale-"))),
        "last_lag_s": round(float(lag[0][0]), 3) if lag else None,
    }  # fmt: skip


def burst(rate: int, seconds: int) -> dict[str, Any]:
    port = free_port()
    with procfile_fleet(workers=False, extra_env=_env(port)) as fleet:
        url = _start_webhooks(fleet, port)
        offer = asyncio.run(_offer(url, rate, seconds))
        wait_for(lambda: _rows(fleet, "SELECT applied_sequence FROM formulary_state")[0][0]
                 >= offer["total"], 120, "every event applied")  # fmt: skip
        checks = _burst_checks(fleet, offer["total"])
        counters = fleet.redis_client().hgetall("rx:metrics")
    answers, total = offer["answers"], offer["total"]
    lat = sorted(offer["latencies"])
    figures = {
        "offered_per_s": round(total / offer["offered_s"]),
        "answered_per_s": round(total / offer["answered_s"]),
        "answers": {k: _tally(v) for k, v in answers.items()},
        "latency_median_ms": round(1000 * statistics.median(lat), 1),
        "latency_p99_ms": round(1000 * lat[int(0.99 * (len(lat) - 1))], 1),
        "webhook_counters": {
            str(k): int(v) for k, v in counters.items() if str(k).startswith("webhook|")
        },
        **checks,
    }
    figures["ok"] = _burst_ok(figures, answers, total)
    return figures


def _tally(statuses: list[int]) -> dict[str, int]:
    return {str(s): statuses.count(s) for s in sorted(set(statuses))}


def _burst_ok(figures: dict[str, Any], answers: dict[str, list[int]], total: int) -> bool:
    return (
        answers["genuine"] == [204] * total and set(answers["replayed"]) == {204}
        and set(answers["forged"]) == {401} and set(answers["stale"]) == {401}
        and figures["kept"] == figures["applied"] == figures["entries"] == total
        and figures["in_order"] and figures["bad_kept"] == 0
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.webhooks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--parts", default="propagation,burst")
    parser.add_argument("--out", type=Path, default=Path("bench/out/webhooks.json"))
    args = parser.parse_args(argv)
    report: dict[str, Any] = {}
    if "propagation" in args.parts:
        report["propagation"] = propagation(args.events)
        print(json.dumps({"propagation": report["propagation"]}), flush=True)
    if "burst" in args.parts:
        report["burst"] = burst(args.rate, args.seconds)
        print(json.dumps({"burst": report["burst"]}), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if all(part["ok"] for part in report.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
