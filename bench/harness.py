"""The one fleet harness: the tests and the benches start, supervise and kill the
Procfile's process types through it.

``procfile_fleet()`` starts a private Redis (any ``LocalRedis``; ``AofRedis`` is
the production persistence of docs/operations.md) and PostgreSQL (or a database
the caller made), then the Procfile's lines as separate processes, each with its
log in ``Fleet.tmp``. ``supervised=True`` restarts any process that exits, as
systemd or supervisord would; ``Fleet.kill`` SIGKILLs one (left to the
supervisor), ``Fleet.stop`` ends one for good. ``KEYS`` are the fleet's PHI and
vault keys (test keys: no real data is ever keyed with them).
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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import redis
import requests

from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis, free_port

ROOT = Path(__file__).resolve().parents[1]
PHI_KEY = "ZuNOx7aOQZ5OozhFMzJ94GksDUikrC0cqiK7-sZPY5U="
VAULT_KEY = "ljN7a7tOg2gjpD_KBxDs1kKKFATa46jexDcywUC8HO4="
FLOWER_AUTH = ("operator", "fleet-test-password")
KEYS = {
    "RXFLEET_PHI_KEY": PHI_KEY,
    "RXFLEET_VAULT_KEY": VAULT_KEY,
    "RXFLEET_SANDBOX": "1",  # the sandbox gateway (README "Running a fleet")
    "RXFLEET_FLOWER_AUTH": ":".join(FLOWER_AUTH),
}


def procfile() -> dict[str, str]:
    """The Procfile's process types: name -> command line."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    entries = (line.split(":", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {name.strip(): command.strip() for name, command in entries}


def base_env(**extra: str) -> dict[str, str]:
    """This environment without its RXFLEET_* settings, plus ``KEYS`` and ``extra``;
    the virtual environment's scripts (celery, rxfleet) first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **KEYS, **extra}


def run_cli(
    env: dict[str, str], *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """``rxfleet ARGS`` with exactly ``env``, from the repository root, to its end."""
    return run_command(env, [sys.executable, "-m", "rxfleet.cli", *args], timeout)


def run_command(
    env: dict[str, str], command: list[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """``command`` with exactly ``env``, from the repository root, to its end (text)."""
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)  # fmt: skip


def wait_for(ready: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``ready`` until it holds; TimeoutError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what}: not within {timeout} s")


def http_up(url: str, auth: tuple[str, str] | None = None) -> bool:
    """Whether ``url`` answers 200."""
    try:
        return requests.get(url, timeout=1, auth=auth).status_code == 200
    except requests.ConnectionError:
        return False


def workers_answer(env: dict[str, str], count: int) -> bool:
    """Whether ``count`` Celery workers answer a ping."""
    ping = subprocess.run(
        ["celery", "-A", "workers.app", "inspect", "ping", "--timeout", "1"],
        cwd=ROOT, env=env, capture_output=True, text=True,
    )  # fmt: skip
    return ping.stdout.count("pong") >= count


def stop_process(proc: subprocess.Popen[Any], grace: float = 20) -> None:
    """SIGTERM a process group, SIGKILL it after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


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
    """A Redis, a database and Procfile processes; ``env`` points the CLI at them.

    A process is named after its Procfile type, with a number for a second one of
    a type (``submit2``). ``app``: the Celery app the worker lines load."""

    env: dict[str, str]
    redis_url: str
    gateway: str
    tmp: Path
    server: LocalRedis
    database_url: str = ""
    app: str = "workers.app"
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    extras: dict[str, dict[str, str]] = field(default_factory=dict)
    wraps: dict[str, list[str]] = field(default_factory=dict)  # e.g. ip netns exec NS
    restarts: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, name)
    stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _supervisor: threading.Thread | None = None

    def line(self, name: str) -> str:
        line = procfile()[name.rstrip("0123456789")]
        return line.replace("-A workers.app", f"-A {self.app}")

    def start(self, name: str, wrap: Sequence[str] = (), **extra: str) -> None:
        """Start process ``name`` (its Procfile line; ``extra``: more environment; ``wrap``:
        a command it runs under, such as ``ip netns exec NS`` for another "host")."""
        self.extras[name] = extra
        self.wraps[name] = list(wrap or self.wraps.get(name, []))
        with (self.tmp / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(
                [*self.wraps[name], "bash", "-c", f"exec {self.line(name)}"], cwd=ROOT,
                env={**self.env, **extra},
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def stop(self, name: str) -> None:
        """End ``name`` for good (SIGTERM, then SIGKILL): the supervisor leaves it."""
        with self._lock:
            proc = self.procs.pop(name)
        stop_process(proc)

    def kill(self, name: str) -> None:
        """SIGKILL the process itself (a worker's main process: no warm shutdown, nothing
        acknowledged or rejected), then its orphaned pool children; the supervisor
        restarts it."""
        wait_for(lambda: self.procs[name].poll() is None, 30, f"{name} restarted")
        proc = self.procs[name]
        proc.kill()
        proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    def supervise(self) -> None:
        """Restart any process that exits, within about half a second (systemd's
        ``Restart=always``); every restart is logged in ``restarts``."""
        self._supervisor = threading.Thread(target=self._watch, name="supervisor", daemon=True)
        self._supervisor.start()

    def _watch(self) -> None:
        while not self.stopping.is_set():
            with self._lock:
                for name, proc in list(self.procs.items()):
                    if proc.poll() is not None:
                        self.restarts.append((time.monotonic(), name))
                        self.start(name, **self.extras[name])
            self.stopping.wait(0.5)

    def end_supervision(self) -> None:
        self.stopping.set()
        if self._supervisor is not None:
            self._supervisor.join()

    def wait_ready(self, workers: int, timeout: float = 60) -> None:
        """Wait for the gateway, then for ``workers`` Celery workers to answer."""
        wait_for(lambda: http_up(self.gateway + "/v1/_sandbox/stats"), timeout, "the gateway")
        if workers:
            wait_for(lambda: workers_answer(self.env, workers), timeout, f"{workers} workers")

    def cli(self, *args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
        """``rxfleet ARGS`` against this fleet, to its end."""
        return run_cli(self.env, *args, timeout=timeout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """``rxfleet ARGS`` as from a terminal: Ctrl-C (SIGINT) reaches it."""
        return subprocess.Popen([sys.executable, "-m", "rxfleet.cli", *args], cwd=ROOT,
                                env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, preexec_fn=_ctrl_c_reaches_it)  # fmt: skip

    def redis_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, decode_responses=True)

    def gateway_claims(self) -> dict[str, dict[str, int]]:
        """The sandbox's counts by claim id (``keys``, ``requests``, ``adjudications``:
        each Idempotency-Key's counted under its claim, the part before ``~``)."""
        stats = requests.get(self.gateway + "/v1/_sandbox/stats", timeout=60).json()
        claims: dict[str, dict[str, int]] = stats["claims"]
        return claims

    def results_count(self, run_id: str | None = None) -> int:
        """Results in the database (of ``run_id``, else all; 0 before the tables exist)."""
        where, params = ("WHERE run_id = %s", (run_id,)) if run_id else ("", ())
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            try:
                row = conn.execute(f"SELECT count(*) FROM results {where}", params).fetchone()
            except psycopg.errors.UndefinedTable:
                return 0
            return int(row[0]) if row else 0


def _ctrl_c_reaches_it() -> None:
    """``preexec_fn`` for a child that will be Ctrl-C'd: SIGINT back to its default.

    A suite started in the background of a non-interactive shell (``.ci/run &``,
    nohup) inherits SIGINT ignored, and so would the child: Python then installs no
    KeyboardInterrupt handler, as a background job should not be interrupted.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def fleet_env(
    server: LocalRedis, database_url: str, port: int, tmp: Path, **extra: str
) -> dict[str, str]:
    """The environment of a fleet on ``server``, ``database_url`` and a gateway on ``port``."""
    gateway = extra.get("RXFLEET_GATEWAY_URL", f"http://127.0.0.1:{port}")
    defaults = {
        "RXFLEET_REDIS_URL": server.url,
        "RXFLEET_DATABASE_URL": database_url,
        "RXFLEET_GATEWAY_URL": gateway,
        "RXFLEET_TOKEN_URL": f"{gateway}/oauth2/token",
        "RXFLEET_SANDBOX_PORT": str(port),
        "RXFLEET_BEAT_SCHEDULE": str(tmp / "beat"),
        "RXFLEET_TOKEN_CHECK_INTERVAL": "1",
    }
    return base_env(**{**defaults, **extra})


@dataclass(frozen=True)
class FleetSpec:
    """What ``procfile_fleet`` starts.

    ``submit_workers``: submit processes (``submit1`` ...). ``scenario``: the sandbox
    gateway's fault file. ``gateway_url``: a sandbox already running (the Procfile's
    ``gateway`` is then not started). ``workers=False``: no cpu, submit or beat
    process. ``flower``: also the Procfile's Flower. ``extra_env``: more RXFLEET_*
    settings for every process. ``server``: the Redis to start (default: a plain
    redis-server). ``database_url``: a database to use (default: a private
    PostgreSQL). ``supervised``: restart any process that exits. ``app``: the
    Celery app of the worker lines."""

    submit_workers: int = 1
    scenario: Path | None = None
    gateway_url: str | None = None
    workers: bool = True
    flower: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    server: LocalRedis | None = None
    database_url: str | None = None
    supervised: bool = False
    app: str = "workers.app"


def _start_processes(fleet: Fleet, spec: FleetSpec) -> None:
    if spec.gateway_url is None:
        scenario = {"RXFLEET_SANDBOX_SCENARIO": str(spec.scenario)} if spec.scenario else {}
        fleet.start("gateway", **scenario)
    if spec.workers:
        fleet.start("cpu")
        for index in range(1, spec.submit_workers + 1):
            fleet.start(f"submit{index}", PORT=str(index))  # a unique node name each
        fleet.start("beat")
    if spec.flower:
        fleet.start("flower")
    fleet.wait_ready(1 + spec.submit_workers if spec.workers else 0)
    if spec.flower:
        url = f"http://127.0.0.1:{fleet.env['RXFLEET_FLOWER_PORT']}/api/workers"
        wait_for(lambda: http_up(url, FLOWER_AUTH), 60, "Flower")


@contextmanager
def procfile_fleet(spec: FleetSpec | None = None, **options: Any) -> Iterator[Fleet]:
    """A Redis, a database and the Procfile's processes, all gone on exit.

    ``spec``, or its fields as keywords (``procfile_fleet(submit_workers=2)``)."""
    spec = spec or FleetSpec(**options)
    with contextlib.ExitStack() as stack:
        server = (spec.server or LocalRedis(binary=shutil.which("redis-server"))).start()
        stack.callback(server.stop)
        database_url = spec.database_url or _private_database(stack)
        tmp = Path(tempfile.mkdtemp(prefix="rxfleet-fleet-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        fleet = _fleet(spec, server, database_url, tmp)
        stack.callback(_stop_processes, fleet)
        _start_processes(fleet, spec)
        if spec.supervised:
            fleet.supervise()
        yield fleet


def _private_database(stack: contextlib.ExitStack) -> str:
    database = LocalPostgres().start()
    stack.callback(database.stop)
    return database.url


def _fleet(spec: FleetSpec, server: LocalRedis, database_url: str, tmp: Path) -> Fleet:
    port = free_port()
    extra = dict(spec.extra_env)
    if spec.gateway_url:
        extra["RXFLEET_GATEWAY_URL"] = spec.gateway_url
    if spec.flower:
        extra["RXFLEET_FLOWER_PORT"] = str(free_port())
    env = fleet_env(server, database_url, port, tmp, **extra)
    return Fleet(env, server.url, env["RXFLEET_GATEWAY_URL"], tmp, server, database_url, spec.app)


def _stop_processes(fleet: Fleet) -> None:
    fleet.end_supervision()
    for name in list(fleet.procs):
        fleet.stop(name)


def stop_all(procs: Sequence[subprocess.Popen[Any]]) -> None:
    """SIGTERM every process group at once, then wait for each (SIGKILL after 30 s)."""
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        stop_process(proc, grace=30)


def adjudicated_twice(stats: dict[str, Any]) -> int:
    """Claims the sandbox adjudicated more than once, from its stats: for a run of
    one submission per claim, any claim whose keys were adjudicated twice in all
    (one key twice, or two keys: a submission must keep one key)."""
    return sum(1 for v in stats["claims"].values() if v["adjudications"] > 1)
