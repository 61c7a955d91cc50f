"""A fleet across two "hosts": network namespaces made by the test, each joined by a
veth pair to a bridge in the root namespace, where Redis, PostgreSQL and the sandbox
gateway listen on the bridge's address. Each host runs the Procfile's cpu, submit and
beat lines (``ip netns exec``); the CLI produces and waits from the root namespace.

A run finishes exactly once with both hosts working and one beat scheduling; a run
survives one host being cut off mid-run (its link down: its processes live on, unable
to reach anything): every claim once, none adjudicated twice (the sandbox's count),
and nothing written twice when the host comes back.
Skipped, with the reason, only where this machine cannot make namespaces."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bench.harness import Fleet, base_env, procfile_fleet, stop_process, wait_for, workers_answer
from bench.hosts import Hosts, missing, namespaces
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis, free_port
from tests.integration.survive.support import exactly_once, start_run

REASON = missing()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"no network namespaces: {REASON}")

HOSTS = (1, 2)
SETTINGS = {
    "RXFLEET_BEAT_LEASE": "3",
    "RXFLEET_SWEEP_INTERVAL": "1",
    "RXFLEET_STALL_SECONDS": "3",  # a batch held by the cut host is re-driven after 3 s
    "RXFLEET_CONNECT_TIMEOUT": "1",
    "RXFLEET_READ_TIMEOUT": "1",  # its send leases run out after 4 x 2 s
    "RXFLEET_COUNTDOWN_MAX": "5",
    "RXFLEET_LINK_SOFT_TIME_LIMIT": "8",
    "RXFLEET_LINK_TIME_LIMIT": "10",
    "RXFLEET_VISIBILITY_TIMEOUT": "30",
    "RXFLEET_UNACKED_RESTORE_INTERVAL": "2",
    "RXFLEET_CPU_CONCURRENCY": "1",
    "RXFLEET_SUBMIT_CONCURRENCY": "2",
    "RXFLEET_SUBMIT_INFLIGHT": "2",
}
SENT = "Sending due task"


@pytest.fixture(scope="module")
def hosts() -> Iterator[Hosts]:
    with namespaces(len(HOSTS)) as made:
        yield made


@pytest.fixture(scope="module")
def fleet(hosts: Hosts, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    database = LocalPostgres(listen=f"127.0.0.1,{hosts.root}", trust_network=hosts.network)
    database.start()
    port = free_port()
    gateway = _gateway(hosts, port, tmp_path_factory.mktemp("hosts") / "slow.json")
    try:
        with procfile_fleet(
            workers=False,
            gateway_url=f"http://{hosts.root}:{port}",
            server=LocalRedis(binary=shutil.which("redis-server"), also_bind=hosts.root),
            database_url=database.url,
            extra_env=SETTINGS,
        ) as started:
            _start_hosts(started, hosts, database)
            yield started
    finally:
        stop_process(gateway)
        database.stop()


def _gateway(hosts: Hosts, port: int, scenario: Path) -> subprocess.Popen[bytes]:
    """The sandbox on the bridge's address, answering in 100 ms: a run of seconds."""
    scenario.write_text(json.dumps({"latency_ms": 100}))
    return subprocess.Popen(
        [sys.executable, "-m", "rxfleet.cli", "gateway", "--host", hosts.root,
         "--scenario", str(scenario), "--port", str(port)],
        env=base_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip


def _start_hosts(fleet: Fleet, hosts: Hosts, database: LocalPostgres) -> None:
    """Each host: the Procfile's cpu, submit and beat, reaching the servers over the bridge."""
    across = {
        "RXFLEET_REDIS_URL": f"redis://{hosts.root}:{fleet.server.port}/0",
        "RXFLEET_DATABASE_URL": database.url.replace("127.0.0.1", hosts.root),
    }
    for host in HOSTS:
        wrap = hosts.wrap(host)
        fleet.start(f"cpu{host}", wrap, PORT=str(host), **across)
        fleet.start(f"submit{host}", wrap, PORT=str(host), **across)
        fleet.start(f"beat{host}", wrap, RXFLEET_BEAT_SCHEDULE=str(fleet.tmp / f"beat{host}"),
                    **across)  # fmt: skip
    wait_for(lambda: workers_answer(fleet.env, 2 * len(HOSTS)), 90, "both hosts' workers")


def _log(fleet: Fleet, name: str) -> str:
    return (fleet.tmp / f"{name}.log").read_text(errors="replace")


def _sandbox_requests(fleet: Fleet) -> int:
    stats = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=30).json()
    return int(stats["claim_requests"])


def _reaches(hosts: Hosts, host: int, port: int) -> bool:
    """Whether ``host`` opens a TCP connection to the root namespace's ``port`` (3 s)."""
    probe = f"exec 3<>/dev/tcp/{hosts.root}/{port}"
    try:
        done = subprocess.run([*hosts.wrap(host), "bash", "-c", probe], timeout=3,
                              capture_output=True)  # fmt: skip
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def test_a_run_across_two_hosts_finishes_exactly_once(fleet: Fleet, tmp_path: Path) -> None:
    ids, out, run, _ = start_run(fleet, tmp_path, "HOSTS", 200, "--timeout", "120")
    _, err = run.communicate(timeout=150)
    assert run.returncode == 0, err
    exactly_once(fleet, out, ids)
    for host in HOSTS:  # both hosts sent claims to the gateway
        assert "tasks.submit.submit" in _log(fleet, f"submit{host}")
        assert "succeeded in" in _log(fleet, f"submit{host}")
    scheduling = [h for h in HOSTS if SENT in _log(fleet, f"beat{h}")]
    assert len(scheduling) == 1, scheduling  # two beats, one schedules
    other = next(h for h in HOSTS if h not in scheduling)
    assert "standby" in _log(fleet, f"beat{other}")


def test_a_run_survives_a_host_cut_off_mid_run(fleet: Fleet, hosts: Hosts, tmp_path: Path) -> None:
    before, before_results = _sandbox_requests(fleet), fleet.results_count()
    ids, out, run, _ = start_run(fleet, tmp_path, "CUTOFF", 400, "--timeout", "150")
    wait_for(lambda: _sandbox_requests(fleet) >= before + 80, 90, "the run under way")
    hosts.cut(2)
    assert _sandbox_requests(fleet) < before + len(ids)  # cut mid-run
    assert not _reaches(hosts, 2, fleet.server.port)  # host 2 cannot reach Redis any more
    assert _reaches(hosts, 1, fleet.server.port)
    try:
        _, err = run.communicate(timeout=180)
    finally:
        run.kill()
    assert run.returncode == 0, err
    exactly_once(fleet, out, ids)  # every claim once, none adjudicated twice
    hosts.restore(2)  # the host comes back: its workers reconnect and find nothing to redo
    wait_for(lambda: workers_answer(fleet.env, 2 * len(HOSTS)), 90, "host 2's workers back")
    assert fleet.results_count() == before_results + len(ids)
    assert not any(v["adjudications"] > 1 for v in fleet.gateway_claims().values())
