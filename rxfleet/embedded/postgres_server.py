"""A PostgreSQL server of our own, on a free loopback port.

Used by the embedded mode and by the tests, like ``LocalRedis``. Binaries, in
order of preference:

1. the PostgreSQL 16 build that the ``pgserver`` wheel ships in
   ``pgserver/pginstall/bin`` (PyPI: no system install needed). We only borrow
   its binaries; ``pgserver`` itself is never imported (it would create a
   system user and chmod directories when run as root);
2. ``initdb``/``postgres`` on PATH, then the newest ``/usr/lib/postgresql/*/bin``.

Each server is private: its data directory and its Unix socket live in a temp
dir that only its user may open (0700), it listens on no TCP port at all, and it
holds one database (``rxfleet``). It trusts who reaches the socket: only its
user (and root) can. Another local user cannot connect, even knowing the path.
It never touches a server that was already running (the socket is named after
a port that was free, never 5432). ``stop()`` removes everything.
``create_role``/``create_database`` make the owner's and the fleet's roles of
the embedded mode (least privilege, as ``rxfleet db upgrade`` grants it).

Running as root: PostgreSQL refuses to. Then ``initdb`` and ``postgres`` run as
an unprivileged user (``nobody`` by default) through ``subprocess``'s
``user=``/``group=`` (setuid in the child; no ``sudo``/``runuser`` needed) and
the temp dir is chowned to it. The binaries must be readable by that user
(a venv under ``/root`` is not: put it elsewhere or pass ``user=``).

Speed: ``initdb`` is done once and the fresh cluster is cached as a template in
``~/.cache/rxfleet/pg-template-<key>`` (keyed by the binaries' path and
mtime); later starts copy it. The server runs with ``fsync=off``,
``synchronous_commit=off`` and ``full_page_writes=off``: safe only because
these servers are throwaway (a crash loses the data, which is deleted anyway).
Never use these settings for the system of record.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import IO
from urllib.parse import quote

import psycopg
from psycopg import sql

from rxfleet.embedded.redis_server import free_port
from rxfleet.errors import InfrastructureError

#: Only for throwaway servers: durability traded for speed.
FAST_UNSAFE_SETTINGS = ("fsync=off", "synchronous_commit=off", "full_page_writes=off")
SUPERUSER = "postgres"
CACHE_DIR = Path.home() / ".cache" / "rxfleet"


def pgserver_bin_dir() -> Path | None:
    """The ``pginstall/bin`` of the pgserver wheel, found without importing it."""
    from importlib.util import find_spec

    try:
        spec = find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    for location in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(location) / "pginstall" / "bin"
        if (candidate / "initdb").is_file():
            return candidate
    return None


def system_bin_dir() -> Path | None:
    """``initdb`` on PATH, else the newest ``/usr/lib/postgresql/<major>/bin``."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("postgres"):
        return Path(on_path).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_major, reverse=True)
    return next((Path(v) for v in versions if Path(v, "initdb").is_file()), None)


def _major(path: str) -> int:
    name = Path(path).parent.name
    return int(name) if name.isdigit() else 0


def postgres_bin_dir() -> Path | None:
    """The best PostgreSQL bin directory available, or None.

    As root the server runs as an unprivileged user, who must be able to reach
    the binaries: a wheel in a venv under a private home is skipped then.
    """
    wheel = pgserver_bin_dir()
    if wheel is not None and (os.geteuid() != 0 or _reachable_by_others(wheel / "postgres")):
        return wheel
    return system_bin_dir() or wheel


def _reachable_by_others(path: Path) -> bool:
    """Whether any user may execute ``path`` (every directory above it searchable)."""
    try:
        if not os.stat(path).st_mode & stat.S_IXOTH:
            return False
        return all(os.stat(parent).st_mode & stat.S_IXOTH for parent in path.parents)
    except OSError:
        return False


def memory_dir(min_free: int = 1 << 30) -> Path | None:
    """``/dev/shm`` if it is a writable tmpfs with ``min_free`` bytes free, else None.

    A server whose temp dir is there starts in ~0.1 s instead of ~0.3-1 s (no
    disk at all), but its data takes RAM: fine for tests, not for big runs.
    """
    shm = Path("/dev/shm")
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    free = stats.f_bavail * stats.f_frsize
    return shm if free >= min_free and os.access(shm, os.W_OK) else None


def _run_as(user: str) -> tuple[int, int] | None:
    """(uid, gid) to run the server as when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise InfrastructureError(
            f"running as root: PostgreSQL refuses root and user {user!r} does not exist"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _chown_tree(root: Path, owner: tuple[int, int] | None) -> None:
    if owner is None:
        return
    os.chown(root, *owner)
    for parent, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(parent, name), *owner, follow_symlinks=False)


@dataclass
class LocalPostgres:
    """One private PostgreSQL server; ``url`` once started."""

    bin_dir: Path | None = None
    database: str = "rxfleet"
    user: str = "nobody"
    use_cache: bool = True
    base_dir: Path | None = None  # where the temp dir goes (default: the system temp dir)
    #: Commits on disk before they are acknowledged (``synchronous_commit`` on): a crash
    #: of the server (SIGKILL) then loses no acknowledged commit; off, it may lose the last.
    durable_commits: bool = False
    port: int = 0
    kind: str = ""
    started_from_cache: bool = False
    listen: str = ""  # listen_addresses: none, the socket only (a test may add its bridge)
    trust_network: str | None = None  # a CIDR also trusted, beside the loopback
    _process: Popen[bytes] | None = None
    _tmp: Path | None = None

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str, user: str = SUPERUSER) -> str:
        """A ``postgresql://`` URL of another database (or as another role) on this
        server: through its Unix socket (``host`` is the socket's directory)."""
        host = quote(str(self._tmp or ""), safe="")
        return f"postgresql://{user}@/{database}?host={host}&port={self.port}"

    def create_role(self, name: str, *, createrole: bool = False) -> None:
        """A login role without password (the socket's directory is the lock)."""
        options = sql.SQL(" CREATEROLE" if createrole else "")
        self._admin(sql.SQL("CREATE ROLE {} LOGIN{}").format(sql.Identifier(name), options))

    def create_database(self, name: str, owner: str = SUPERUSER) -> None:
        self._admin(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(owner)))  # fmt: skip

    def _admin(self, statement: sql.Composed) -> None:
        try:
            with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
                conn.execute(statement)
        except psycopg.Error as exc:
            raise InfrastructureError(f"local PostgreSQL: {exc.sqlstate or 'failed'}") from None

    @property
    def socket_dir(self) -> Path | None:
        return self._tmp

    def start(self) -> LocalPostgres:
        bin_dir = self.bin_dir or postgres_bin_dir()
        if bin_dir is None:
            raise InfrastructureError("no PostgreSQL binaries (install pgserver or postgresql)")
        self.bin_dir = bin_dir
        self.kind = str(bin_dir)
        owner = _run_as(self.user)
        self._prepare(bin_dir, owner)
        if self.trust_network:
            assert self._tmp is not None
            with (self._tmp / "data" / "pg_hba.conf").open("a") as hba:
                hba.write(f"host all all {self.trust_network} trust\n")
        for _ in range(3):  # a free port can be taken between probe and bind
            self.port = free_port()
            if self._start_server(bin_dir, owner):
                self._create_database()
                return self
        self.stop()
        raise InfrastructureError("could not start a local PostgreSQL server")

    def _prepare(self, bin_dir: Path, owner: tuple[int, int] | None) -> None:
        """A temp dir (owned by the server's user) holding a fresh cluster in ``data``."""
        self._tmp = Path(tempfile.mkdtemp(prefix="rxfleet-pg-", dir=self.base_dir))
        data = self._tmp / "data"
        template = _template_path(bin_dir) if self.use_cache else None
        if template is not None and template.is_dir():
            shutil.copytree(template, data, symlinks=True)
            self.started_from_cache = True
            _chown_tree(self._tmp, owner)
            return
        _chown_tree(self._tmp, owner)
        _initdb(bin_dir, data, owner)
        if template is not None:
            _save_template(data, template)

    def _start_server(self, bin_dir: Path, owner: tuple[int, int] | None) -> bool:
        assert self._tmp is not None
        args = [str(bin_dir / "postgres"), "-D", str(self._tmp / "data"), "-p", str(self.port),
                "-c", f"listen_addresses={self.listen}", "-k", str(self._tmp)]  # fmt: skip
        for setting in FAST_UNSAFE_SETTINGS:
            if not (self.durable_commits and setting.startswith("synchronous_commit")):
                args += ["-c", setting]
        with open(self._tmp / "server.log", "ab") as log:
            self._process = _popen(args, owner, log)
        if self._wait_ready():
            return True
        self._terminate()
        return False

    def _wait_ready(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                return False
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.url_for("postgres"), connect_timeout=2).close()
                return True
            time.sleep(0.02)
        return False

    def _create_database(self) -> None:
        try:
            self.create_database(self.database)
        except InfrastructureError:
            self.stop()
            raise InfrastructureError("could not create the local database") from None

    def _terminate(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def halt(self, kill: bool = False) -> None:
        """Stop the server and keep its data: a fast shutdown (the sessions end with
        57P01), or with ``kill`` a SIGKILL of the postmaster, as a crash would."""
        if kill and self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None
        self._terminate()

    def restart(self, timeout: float = 30.0) -> None:
        """Start a halted server again, on its port and data (after a SIGKILL the old
        backends may hold its shared memory a moment: tried until ``timeout``)."""
        assert self.bin_dir is not None
        deadline = time.monotonic() + timeout
        while not self._start_server(self.bin_dir, _run_as(self.user)):
            if time.monotonic() > deadline:
                raise InfrastructureError("the local PostgreSQL server did not start again")
            time.sleep(0.2)

    def stop(self) -> None:
        self._terminate()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _popen(args: list[str], owner: tuple[int, int] | None, log: IO[bytes]) -> Popen[bytes]:
    """Start ``args``, as ``owner`` (setuid/setgid in the child, no extra groups) if given."""
    user, group = owner if owner is not None else (None, None)
    extra: list[int] | None = [] if owner is not None else None
    return Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                 user=user, group=group, extra_groups=extra)  # fmt: skip


def _initdb(bin_dir: Path, data: Path, owner: tuple[int, int] | None) -> None:
    args = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"]  # fmt: skip
    with tempfile.TemporaryFile() as log:
        code = _popen(args, owner, log).wait()
        if code != 0:
            log.seek(0)
            tail = "\n".join(log.read().decode(errors="replace").splitlines()[-5:])
            raise InfrastructureError(f"initdb failed (exit {code}): {tail}")


def _template_path(bin_dir: Path) -> Path | None:
    """Where the initdb'd template for these binaries is cached (None: no cache dir)."""
    try:
        stamp = (bin_dir / "postgres").stat().st_mtime_ns
        CACHE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    key = hashlib.sha256(f"{bin_dir.resolve()}:{stamp}".encode()).hexdigest()[:16]
    return CACHE_DIR / f"pg-template-{key}"


def _save_template(data: Path, template: Path) -> None:
    """Copy a pristine cluster into the cache, atomically (the first writer wins)."""
    staging = Path(tempfile.mkdtemp(prefix=".pg-template-", dir=template.parent))
    try:
        shutil.copytree(data, staging / "data", symlinks=True)
        os.rename(staging / "data", template)
    except OSError:
        pass  # another process cached it first, or the cache is not writable
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def local_postgres(
    bin_dir: Path | None = None, use_cache: bool = True, base_dir: Path | None = None
) -> Iterator[LocalPostgres]:
    server = LocalPostgres(bin_dir=bin_dir, use_cache=use_cache, base_dir=base_dir).start()
    try:
        yield server
    finally:
        server.stop()
