"""The embedded fleet is its owner's only (issue 21): another local user, who can
see its servers with ``ps`` like anyone, can neither connect to its PostgreSQL (a
Unix socket in a 0700 directory, no TCP) nor use its Redis (a password that
never leaves the process), nor read the results file (0600).

The test creates that user (``useradd``; CI runs as root) and removes it after;
the probes run as it through ``runuser``, with the system's Python and its
standard library only. The run is kept going by a slow sandbox gateway."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import ROOT, base_env, wait_for
from rxfleet.gateway.sandbox.scenario import Scenario
from rxfleet.gateway.sandbox.server import SandboxGateway

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("runuser"),
    reason="creates a second local user: needs root, useradd and runuser (as CI has)",
)

PROBE = r"""
import json, os, socket, sys
redis_port, pg_dir, pg_port, results = sys.argv[1:5]
out = {}
try:
    with socket.create_connection(("127.0.0.1", int(redis_port)), timeout=5) as s:
        s.sendall(b"PING\r\nKEYS *\r\n")
        out["redis"] = s.recv(200).decode(errors="replace")
except OSError as e:
    out["redis"] = "error " + type(e).__name__
try:  # PostgreSQL's port over TCP: nothing listens
    socket.create_connection(("127.0.0.1", int(pg_port)), timeout=5).close()
    out["pg_tcp"] = "allowed"
except OSError as e:
    out["pg_tcp"] = type(e).__name__
for name, probe in (("pg_socket", lambda: socket.socket(socket.AF_UNIX).connect(
        os.path.join(pg_dir, ".s.PGSQL." + pg_port))), ("pg_dir", lambda: os.listdir(pg_dir)),
        ("results", lambda: open(results).read())):
    try:
        probe()
        out[name] = "allowed"
    except OSError as e:
        out[name] = type(e).__name__
print(json.dumps(out))
"""


@pytest.fixture
def stranger() -> Iterator[str]:
    name = f"rxprobe{uuid.uuid4().hex[:8]}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True)  # fmt: skip
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


def _children(pid: int) -> dict[int, str]:
    """pid -> command line of every descendant of ``pid`` (what ``ps`` shows anyone)."""
    parents: dict[int, int] = {}
    lines: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rpartition(")")[2]
                                               .split()[1])  # fmt: skip
                lines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")\
                    .decode(errors="replace")  # fmt: skip
            except (OSError, ValueError):
                continue
    found: dict[int, str] = {}
    frontier = {pid}
    while frontier:
        frontier = {p for p, parent in parents.items() if parent in frontier} - set(found)
        found |= {p: lines.get(p, "") for p in frontier}
    return found


def _servers(pid: int) -> tuple[str, str, str] | None:
    """(Redis port, PostgreSQL socket dir, its port) read off the run's children."""
    lines = " ".join(_children(pid).values())
    redis = re.search(r"(?:valkey|redis)-server\S* (?:\S+ )?(?:127\.0\.0\.1:|.*?--port )(\d+)",
                      lines)  # fmt: skip
    postgres = re.search(r"postgres -D \S+ -p (\d+) .*?-k (\S+)", lines)
    return (redis[1], postgres[2], postgres[1]) if redis and postgres else None


def _probe(user: str, *args: str) -> dict[str, str]:
    done = subprocess.run(["runuser", "-u", user, "--", "/usr/bin/python3", "-c", PROBE, *args],
                          capture_output=True, text=True, timeout=60, cwd="/")  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def test_another_local_user_cannot_reach_a_running_embedded_fleet(
    stranger: str, tmp_path: Path
) -> None:
    claims = tmp_path / "claims.jsonl"
    sample = (ROOT / "samples" / "claims.jsonl").read_text().splitlines(keepends=True)
    claims.write_text("".join(sample[:20]))
    tmp_path.chmod(0o755)  # the directory is open: only the file's own mode protects it
    out = tmp_path / "results.csv"
    with SandboxGateway(scenario=Scenario(latency_ms=6000)) as gateway:
        env = base_env(RXFLEET_GATEWAY_URL=gateway.url, RXFLEET_TOKEN_URL=gateway.token_url)
        env.pop("RXFLEET_FLOWER_AUTH")
        run = subprocess.Popen([sys.executable, "-m", "rxfleet.cli", "run", str(claims), "-o",
                                str(out)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            wait_for(lambda: _servers(run.pid) is not None or run.poll() is not None, 60,
                     "the embedded servers")  # fmt: skip
            servers = _servers(run.pid)
            assert servers is not None, "the run ended before its servers were seen"
            probed = _probe(stranger, *servers, str(out))
            assert run.poll() is None, "the run ended during the probes: they proved nothing"
        finally:
            _, stderr = run.communicate(timeout=240)
    assert run.returncode == 0, stderr
    assert probed["redis"].startswith("-NOAUTH"), probed  # reached, and refused
    assert probed["pg_socket"] == "PermissionError" and probed["pg_dir"] == "PermissionError"
    assert probed["pg_tcp"] == "ConnectionRefusedError", probed
    assert (out.stat().st_mode & 0o777) == 0o600
    assert out.read_text().startswith("claim_id,")  # its owner reads it
    after = _probe(stranger, *servers, str(out))
    assert after["results"] == "PermissionError", after
