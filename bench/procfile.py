"""Start the Procfile's process types against a private redis-server, for the benches.

``procfile_fleet(supervised=True)`` also runs a supervisor thread that restarts any
process that exits (as systemd or supervisord would); ``Fleet.kill`` SIGKILLs one.
``AofRedis`` is a private redis-server with the production persistence of
docs/operations.md: AOF, ``appendfsync everysec``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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
class AofRedis(LocalRedis):
    """A private redis-server with AOF and ``appendfsync everysec`` (the production
    setting: a SIGKILL may lose up to about a second of writes)."""

    appendonly: bool = True

    def _spawn(self) -> bool:
        assert self._tmp is not None and self._binary is not None
        args = [self._binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "yes", "--appendfsync", "everysec", "--dir", self._tmp.name,
                "--loglevel", "warning",
                "--logfile", str(Path(self._tmp.name) / "server.log")]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.kind = Path(self._binary).name
        return self._wait_ready()


@dataclass
class Fleet:
    """A redis-server and Procfile processes; ``env`` points the CLI at them."""

    env: dict[str, str]
    redis_url: str
    gateway: str
    tmp: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    server: LocalRedis | None = None
    database_url: str = ""
    lines: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    restarts: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, name)
    stopping: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    def start(self, name: str, line: str, **extra: str) -> None:
        self.lines[name] = (line, extra)
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
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill(self, name: str) -> None:
        """SIGKILL the process itself (a worker's main process: no warm shutdown, nothing
        acknowledged or rejected), then its orphaned pool children; the supervisor
        restarts it."""
        deadline = time.monotonic() + 30
        while self.procs[name].poll() is not None and time.monotonic() < deadline:
            time.sleep(0.1)  # dead already (killed a moment ago): wait for its restart
        proc = self.procs[name]
        proc.kill()
        time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def supervise(self) -> None:
        """Restart any process that exits, within about half a second (systemd's
        ``Restart=always``); every restart is logged in ``restarts``."""
        self._supervisor = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._supervisor.start()

    def _watch(self) -> None:
        while not self.stopping.is_set():
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None and self.procs.get(name) is proc:
                    self.restarts.append((time.monotonic(), name))
                    line, extra = self.lines[name]
                    self.start(name, line, **extra)
            self.stopping.wait(0.5)

    def end_supervision(self) -> None:
        self.stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()

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
    server: LocalRedis | None = None,
    supervised: bool = False,
) -> Iterator[Fleet]:
    """A private redis-server plus the Procfile's processes.

    ``gateway_url``: point the fleet at a sandbox gateway already running (the
    Procfile's ``gateway`` is then not started). ``workers=False``: start no
    cpu, submit or beat process (the redis-server, and the gateway unless
    ``gateway_url``, only). ``extra_env``: more RXFLEET_* settings for every process.
    ``server``: the Redis to start (default: a plain redis-server; e.g. ``AofRedis``).
    ``supervised``: restart any process that exits (``Fleet.restarts``).
    """
    server = (server or LocalRedis(binary=shutil.which("redis-server"))).start()
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
    fleet = Fleet(env, server.url, gateway, tmp, server=server, database_url=database.url)
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
        if supervised:
            fleet.supervise()
        yield fleet
    finally:
        fleet.end_supervision()
        for name in list(fleet.procs):
            fleet.stop(name)
        server.stop()
        database.stop()
        shutil.rmtree(tmp, ignore_errors=True)
