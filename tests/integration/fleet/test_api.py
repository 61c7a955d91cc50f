"""The public Python API against the session's real fleet, the example upstream
script that uses it, and the metrics exporter scraped over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from bench.harness import PHI_KEY, VAULT_KEY
from rxfleet import api
from rxfleet.embedded.redis_server import free_port
from rxfleet.errors import ConfigError, InputError
from rxfleet.metrics import registry
from tests.integration.fleet.fleet_support import SAMPLE, Fleet

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def _claims(count: int) -> list[dict[str, Any]]:
    rows = []
    for line in SAMPLE.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
        if len(rows) == count:
            break
    return rows


def test_claim_dicts_round_trip_in_input_order_and_leave_no_file(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    claims = _claims(120)
    run = api.enqueue_claims(claims, batch_size=25, new=True, tmp_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []  # the temporary JSONL is gone (it held PHI)
    seen: list[tuple[int, int | None]] = []
    final = run.wait(timeout=120, on_progress=lambda done, total: seen.append((done, total)))
    assert final.finished and final.total == len(claims)
    assert seen[-1] == (len(claims), len(claims)) and len(set(seen)) == len(seen)
    rows = list(run.results())
    assert [r["claim_id"] for r in rows] == [c["claim_id"] for c in claims]
    assert [r["seq"] for r in rows] == list(range(len(claims)))
    assert all("cardholder_id" not in r and r["status"] for r in rows)
    assert sum(run.counts().values()) == len(claims)
    listed = {info.run_id: info for info in api.runs(limit=50)}
    assert listed[run.id].state == "finished" and listed[run.id].recorded == len(claims)
    assert api.run(run.id) == run


def test_enqueue_a_file_and_abort_and_errors(clean_fleet: Fleet, tmp_path: Path) -> None:
    run = api.enqueue(SAMPLE, batch_size=100, new=True)
    api.abort(run.id)  # may land after the last claim: either way every claim ends
    final = run.wait(timeout=120)
    assert final.finished
    assert sum(run.counts().values()) == final.total
    with pytest.raises(ConfigError, match="no run nope"):
        api.run("nope")
    with pytest.raises(InputError, match=r"missing\.jsonl"):
        api.enqueue(tmp_path / "missing.jsonl")


def test_metrics_over_http_match_the_results_exactly(clean_fleet: Fleet) -> None:
    port = free_port()
    server, thread = start_http_server(
        port, addr="127.0.0.1", registry=registry(api.fleet_snapshot)
    )
    try:
        before = _scrape(port)
        run = api.enqueue(SAMPLE, batch_size=100, new=True)
        during = _scrape(port)  # a scrape during the run works and never goes backwards
        assert _total(during, "rxfleet_claims_total") >= _total(before, "rxfleet_claims_total")
        run.wait(timeout=120)
        after = _scrape(port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    rows = list(run.results())
    by_status_route = Counter((r["status"], r["route"]) for r in rows)
    by_code = Counter(code for r in rows for code in r["reject_codes"] or [])
    claims = _delta(after, before, "rxfleet_claims_total", ("status", "route"))
    assert claims == {k: v for k, v in by_status_route.items()}
    assert _delta(after, before, "rxfleet_reject_codes_total", ("code",)) == {
        (k,): v for k, v in by_code.items()
    }
    sent = sum(int(r["attempts"] or 0) for r in rows)
    latency = _delta(after, before, "rxfleet_gateway_request_seconds_count", ())
    assert latency == {(): sent} and sent > 0  # every request the submit link made
    assert _total(after, "rxfleet_breaker_state") == 2  # one state each, two breakers
    assert {s.labels["queue"] for s in after if s.name == "rxfleet_queue_depth"} == {
        "rxfleet.cpu",
        "rxfleet.gateway",
    }
    stats = api.stats(run.id)
    assert sum(c["count"] for c in stats["run"]["claims"]) == len(rows)
    assert stats["run"]["reject_codes"] == dict(sorted(by_code.items()))


Sample = Any


def _scrape(port: int) -> list[Sample]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return [s for family in text_string_to_metric_families(text) for s in family.samples]


def _total(samples: list[Sample], name: str) -> float:
    return float(sum(s.value for s in samples if s.name == name))


def _delta(
    after: list[Sample], before: list[Sample], name: str, labels: tuple[str, ...]
) -> dict[tuple[str, ...], int]:
    def table(samples: list[Sample]) -> Counter[tuple[str, ...]]:
        out: Counter[tuple[str, ...]] = Counter()
        for s in samples:
            if s.name == name:
                out[tuple(s.labels[k] for k in labels)] += int(s.value)
        return out

    diff = table(after)
    diff.subtract(table(before))
    return {k: v for k, v in diff.items() if v}


def test_the_example_upstream_script_runs_against_the_fleet(
    clean_fleet: Fleet, tmp_path: Path
) -> None:
    settings = clean_fleet.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}
    env.update(
        RXFLEET_REDIS_URL=str(settings.redis_url),
        RXFLEET_DATABASE_URL=str(settings.database_url),
        RXFLEET_GATEWAY_URL=str(settings.gateway_url),
        RXFLEET_TOKEN_URL=str(settings.token_url),
        RXFLEET_PHI_KEY=PHI_KEY,
        RXFLEET_VAULT_KEY=VAULT_KEY,
        RXFLEET_SANDBOX="1",
    )
    out = tmp_path / "night.jsonl"
    script = ROOT / "docs" / "examples" / "enqueue_nightly.py"
    done = subprocess.run(
        [sys.executable, str(script), str(SAMPLE), "--out", str(out), "--timeout", "120"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("run ")
    counts = {line.split()[0]: int(line.split()[1]) for line in lines[1:]}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(counts.values()) == len(rows) == len(SAMPLE.read_text().splitlines())
    assert counts == dict(Counter(r["status"] for r in rows))
    assert {"PAID", "QUARANTINED"} <= set(counts)
    assert "claims" in done.stderr  # the progress callback was called
