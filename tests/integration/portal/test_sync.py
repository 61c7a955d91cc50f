"""Issue 18: ``rxfleet sync`` against the sandbox portal over HTTP, on the Procfile
fleet: drained with every claim recorded once and acknowledged once, in order and
never ahead of its record; the same after a sync is SIGKILLed mid-stream and started
again; two syncs at once never pull the same claim."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from bench.harness import ROOT, Fleet, run_cli, stop_process, wait_for
from bench.portal import portal_stats
from tests.integration.portal.conftest import PENDING
from tests.integration.portal.portal_support import check_drained, new_portal


def _sync(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The Procfile's ``sync`` line, as its own process group."""
    return subprocess.Popen([sys.executable, "-m", "rxfleet.cli", "sync"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # fmt: skip


def test_sync_drains_the_portal_in_order_paced_by_its_headers(portal_fleet: Fleet) -> None:
    url, env = new_portal(portal_fleet)
    done = run_cli(env, "sync", "--drain", timeout=120)
    assert done.returncode == 0, done.stderr
    assert "portal drained" in done.stderr
    found = check_drained(portal_fleet, url, PENDING)
    assert found["throttled"] == 0  # X-RateLimit-Remaining/Reset paced it: never a 429
    assert found["pulled_twice"] == 0
    assert found["pull_requests"] > PENDING // 20  # pages of RXFLEET_SYNC_PAGE claims


def test_a_sync_killed_mid_stream_and_started_again_loses_and_repeats_nothing(
    portal_fleet: Fleet,
) -> None:
    url, env = new_portal(portal_fleet)
    first = _sync(env)
    try:
        wait_for(lambda: portal_stats(url)["pulled"] >= 40, 60, "40 claims pulled")
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # mid-stream: claims pulled, not all recorded
        first.wait()
    assert portal_stats(url)["acked"] < PENDING
    done = run_cli(env, "sync", "--drain", timeout=120)
    assert done.returncode == 0, done.stderr
    check_drained(portal_fleet, url, PENDING)


def test_two_syncs_at_once_never_pull_the_same_claim(portal_fleet: Fleet) -> None:
    url, env = new_portal(portal_fleet)
    syncs = [_sync(env), _sync(env)]
    try:
        wait_for(lambda: portal_stats(url)["pending"] == 0, 90, "every claim acknowledged")
    finally:
        for proc in syncs:
            stop_process(proc)
    found = check_drained(portal_fleet, url, PENDING)
    assert found["pulled_twice"] == 0 and found["pulled"] == PENDING
