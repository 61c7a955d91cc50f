"""The operator's controls of the send pace, on the Procfile's fleet under a fleet-wide
gateway rate (``RXFLEET_GATEWAY_RATE``): no second at the sandbox ever sees more
requests than the rate, and the run keeps up to it; ``rxfleet pause`` / ``unpause``
mid-run: no gateway request reaches the sandbox while paused (its own count), though
a window sent at the rate takes longer than the second the pause promises; the pause
and the rate show in ``rxfleet stats``, the exporter and the run's own output; after
``unpause`` the run finishes, every claim once. And a vault key rotated in the wrong
order (the producer given the new key before the workers): the workers name the key
id they lack, once each, the claims wait, and once the workers have it the run
finishes, every claim once."""

from __future__ import annotations

import base64
import bisect
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import requests

from bench.harness import Fleet, http_up, procfile_fleet, wait_for
from rxfleet.claims.phi import VaultCipher
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import free_port
from tests.integration.conftest import new_database
from tests.integration.survive.support import exactly_once, start_run

CLAIMS = 400  # 10 s at the rate: the pause command lands mid-run on a loaded machine too
HONOURED = 1.0  # every submit worker holds back within a second
WATCHED = 3.0  # then this long without a single request
RATE = 40  # claims a second, the whole fleet
CPU_PROCESSES = 2  # the cpu worker's prefork processes


@pytest.fixture(scope="module")
def fleet(pg_server: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    scenario = tmp_path_factory.mktemp("pause") / "slow.json"
    scenario.write_text(json.dumps({"latency_ms": 100}))  # a run long enough to pause mid-way
    metrics_port = str(free_port())
    with procfile_fleet(
        scenario=scenario,
        submit_workers=2,
        database_url=new_database(pg_server),
        extra_env={  # 2 workers x 2 threads x 16 in flight / 0.1 s: 640 a second, but for
            "RXFLEET_CPU_CONCURRENCY": str(CPU_PROCESSES),
            "RXFLEET_SUBMIT_CONCURRENCY": "2",  # the rate: a window of 16 takes ~1.6 s
            "RXFLEET_SUBMIT_INFLIGHT": "16",
            "RXFLEET_GATEWAY_RATE": str(RATE),
            "RXFLEET_PROGRESS_INTERVAL": "1",  # the run's own lines, in a pipe
            "RXFLEET_METRICS_PORT": metrics_port,
        },
    ) as started:
        started.start("metrics")
        wait_for(lambda: http_up(_metrics_url(started)), 60, "the exporter")
        yield started


def _metrics_url(fleet: Fleet) -> str:
    return f"http://127.0.0.1:{fleet.env['RXFLEET_METRICS_PORT']}/metrics"


def _sends(fleet: Fleet, prefix: str) -> list[float]:
    """When each claim request of the claims ``prefix`` names reached the sandbox."""
    stats = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=30).json()
    return sorted(e["started"] for e in stats["log"]
                  if e["path"] == "/v1/claims" and str(e["key"]).startswith(prefix))  # fmt: skip


def _busiest_second(times: list[float]) -> int:
    """The most requests in any one-second window (sliding, not aligned)."""
    return max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))


def test_no_second_sees_more_than_the_rate_and_the_run_keeps_up(
    fleet: Fleet, tmp_path: Path
) -> None:
    ids, out, run, _ = start_run(fleet, tmp_path, "RATE", 200)
    seen = []
    try:
        while run.poll() is None:
            seen.append(_stats(fleet)["gateway_rate_per_second"])
            time.sleep(0.5)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
        run.communicate()
    assert run.returncode == 0, err
    assert f"sent at the fleet's gateway rate, {RATE} claims/s at most" in err
    exactly_once(fleet, out, ids)
    times = _sends(fleet, "RATE")
    assert len(times) == 200
    kept = (len(times) - 1) / (times[-1] - times[0])
    assert _busiest_second(times) <= RATE, (_busiest_second(times), kept)
    assert kept >= 0.85 * RATE, (_busiest_second(times), kept)  # the run kept up
    assert float(RATE) in seen
    assert f"rxfleet_gateway_rate {RATE:.1f}" in _exported(fleet)


def _stats(fleet: Fleet) -> dict[str, Any]:
    stats = fleet.cli("stats", "--json")
    assert stats.returncode == 0, stats.stderr
    return cast(dict[str, Any], json.loads(stats.stdout))


def _sandbox_requests(fleet: Fleet) -> int:
    return len(_sends(fleet, "PAUSE"))


def _exported(fleet: Fleet) -> str:
    return requests.get(_metrics_url(fleet), timeout=30).text


def test_pause_mid_run_sends_nothing_and_unpause_finishes(fleet: Fleet, tmp_path: Path) -> None:
    ids, out, run, _ = start_run(fleet, tmp_path, "PAUSE", CLAIMS)
    try:
        _pause_and_unpause(fleet)
        _, err = run.communicate(timeout=180)
    finally:
        run.kill()
        run.communicate()
    assert run.returncode == 0, err
    assert "paused by an operator until `rxfleet unpause`" in err  # the run said so
    assert "unpaused: claims are sent again" in err
    exactly_once(fleet, out, ids)
    assert "rxfleet_operator_pause 0.0" in _exported(fleet)


def _pause_and_unpause(fleet: Fleet) -> None:
    wait_for(lambda: _sandbox_requests(fleet) >= 20, 120, "the run under way")
    paused = fleet.cli("pause")
    assert paused.returncode == 0, paused.stderr
    assert "until `rxfleet unpause`" in paused.stderr
    time.sleep(HONOURED)  # the grace the command promises: requests in flight finish
    before = _sandbox_requests(fleet)
    assert 0 < before < CLAIMS
    stats = json.loads(fleet.cli("stats", "--json").stdout)
    assert stats["operator_pause"]["until"] is None
    assert "rxfleet_operator_pause 1.0" in _exported(fleet)
    assert 'rxfleet_workers{queue="rxfleet.gateway"} 2.0' in _exported(fleet)
    time.sleep(WATCHED)
    assert _sandbox_requests(fleet) == before  # not one request while paused
    resumed = fleet.cli("unpause")
    assert resumed.returncode == 0 and "unpaused" in resumed.stderr, resumed.stderr


def test_a_pause_for_a_while_ends_by_itself(fleet: Fleet) -> None:
    paused = fleet.cli("pause", "--for", "5s")
    assert paused.returncode == 0 and " UTC;" in paused.stderr, paused.stderr
    assert "rxfleet_operator_pause 1.0" in _exported(fleet)
    wait_for(lambda: "rxfleet_operator_pause 0.0" in _exported(fleet), 20, "the pause's end")
    assert json.loads(fleet.cli("stats", "--json").stdout)["operator_pause"] is None
    nothing = fleet.cli("unpause")
    assert nothing.returncode == 0 and "nothing to end" in nothing.stderr


def test_a_vault_key_the_workers_lack_is_named_once_and_the_claims_wait(
    fleet: Fleet, tmp_path: Path
) -> None:
    """The run's process seals its input slices under a newer vault key than the workers
    hold: the cpu worker that opens them (the intake link) names the key id, once a
    process, and nothing moves until the workers are given the key."""
    newer = base64.b64encode(os.urandom(32)).decode()
    kid = VaultCipher(base64.b64decode(newer)).kid
    said = f"vault key id {kid}: this worker lacks it"
    seen = _log(fleet, "cpu").count(said)
    producer = dict(fleet.env)
    fleet.env["RXFLEET_VAULT_KEY"] = newer  # only for the run's own process
    try:
        ids, out, run, _ = start_run(fleet, tmp_path, "KID", 40)
    finally:
        fleet.env.clear()
        fleet.env.update(producer)
    try:
        wait_for(
            lambda: _log(fleet, "cpu").count(said) > seen, 60, "the cpu worker naming the key id"
        )
        time.sleep(6)  # a slice comes back every 5 s: each process has had another look
        assert 1 <= _log(fleet, "cpu").count(said) - seen <= CPU_PROCESSES  # once a process
        assert _sends(fleet, "KID") == []  # nothing sent, nothing ended
        for name in ("cpu", "submit1", "submit2"):
            fleet.stop(name)
            fleet.start(name, RXFLEET_VAULT_KEYS_OLD=newer)
        _, err = run.communicate(timeout=120)
    finally:
        run.kill()
        run.communicate()
    assert run.returncode == 0, err
    rows = exactly_once(fleet, out, ids)
    assert all(r["status"] == "PAID" for r in rows)


def _log(fleet: Fleet, name: str) -> str:
    return (fleet.tmp / f"{name}.log").read_text(errors="replace")
