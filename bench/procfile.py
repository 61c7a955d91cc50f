"""Start the Procfile's process types against a private redis-server, for the benches."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from rxfleet.embedded.postgres_server import LocalPostgres  # noqa: E402
from rxfleet.embedded.redis_server import LocalRedis, free_port  # noqa: E402

KEYS = {
    "RXFLEET_PHI_KEY": "ZuNOx7aOQZ5OozhFMzJ94GksDUikrC0cqiK7-sZPY5U=",
    "RXFLEET_VAULT_KEY": "ljN7a7tOg2gjpD_KBxDs1kKKFATa46jexDcywUC8HO4=",
    "RXFLEET_SANDBOX": "1",  # the sandbox gateway (README "Running a fleet")
    "RXFLEET_FLOWER_AUTH": "operator:bench-password",
}


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = (line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in entries}


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **KEYS, **extra}


@dataclass
class Fleet:
    """A redis-server and Procfile processes; ``env`` points the CLI at them."""

    env: dict[str, str]
    redis_url: str
    gateway: str
    tmp: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, line: str, **extra: str) -> None:
        log = (self.tmp / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            ["bash", "-c", f"exec {line}"],
            cwd=ROOT,
            env={**self.env, **extra},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def wait_ready(self, workers: int) -> None:
        for _ in range(300):
            try:
                requests.get(self.gateway + "/v1/_sandbox/stats", timeout=1)
                if workers == 0:
                    return
                ping = subprocess.run(
                    ["celery", "-A", "workers.app", "inspect", "ping", "--timeout", "1"],
                    cwd=ROOT, env=self.env, capture_output=True, text=True,
                )  # fmt: skip
                if ping.stdout.count("pong") >= workers:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise SystemExit("the Procfile fleet did not come up")


@contextmanager
def procfile_fleet(
    submit_workers: int = 1,
    scenario: Path | None = None,
    *,
    gateway_url: str | None = None,
    workers: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Fleet]:
    """A private redis-server plus the Procfile's processes.

    ``gateway_url``: point the fleet at a sandbox gateway already running (the
    Procfile's ``gateway`` is then not started). ``workers=False``: start no
    cpu, submit or beat process (the redis-server, and the gateway unless
    ``gateway_url``, only). ``extra_env``: more RXFLEET_* settings for every process.
    """
    server = LocalRedis(binary=shutil.which("redis-server")).start()
    database = LocalPostgres().start()
    port = free_port()
    gateway = gateway_url or f"http://127.0.0.1:{port}"
    tmp = Path(tempfile.mkdtemp(prefix="rxfleet-bench-"))
    env = base_env(
        RXFLEET_REDIS_URL=server.url,
        RXFLEET_DATABASE_URL=database.url,
        RXFLEET_GATEWAY_URL=gateway,
        RXFLEET_TOKEN_URL=f"{gateway}/oauth2/token",
        RXFLEET_SANDBOX_PORT=str(port),
        RXFLEET_BEAT_SCHEDULE=str(tmp / "beat"),
        RXFLEET_TOKEN_CHECK_INTERVAL="1",
        **(extra_env or {}),
    )
    fleet = Fleet(env, server.url, gateway, tmp)
    lines = procfile()
    extra = {"RXFLEET_SANDBOX_SCENARIO": str(scenario)} if scenario else {}
    try:
        if gateway_url is None:
            fleet.start("gateway", lines["gateway"], **extra)
        if workers:
            fleet.start("cpu", lines["cpu"])
            for index in range(1, submit_workers + 1):
                fleet.start(f"submit{index}", lines["submit"], PORT=str(index))  # unique node name
            fleet.start("beat", lines["beat"])
        fleet.wait_ready(1 + submit_workers if workers else 0)
        yield fleet
    finally:
        for name in list(fleet.procs):
            fleet.stop(name)
        server.stop()
        database.stop()
        shutil.rmtree(tmp, ignore_errors=True)
