"""A private RabbitMQ node for the benches (Debian's rabbitmq-server), never the machine's.

Its own node name, AMQP port, distribution port and epmd port (all free loopback
ports), its own Mnesia, log, config and plugin files and Erlang cookie in a temp
directory. It runs as the calling user from the package's own sbin scripts (the
Debian wrapper would switch to the rabbitmq user and its /var/lib/rabbitmq home).

    with private_rabbitmq() as url:   # amqp://guest:guest@127.0.0.1:PORT//
        ...
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rxfleet.embedded.redis_server import free_port


def sbin() -> Path | None:
    """The package's own scripts (rabbitmq-server, rabbitmqctl), not the su wrapper."""
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin"))
    return Path(found[-1]) if found else None


def _env(tmp: Path, node: str, port: int, dist: int, epmd: int) -> dict[str, str]:
    (tmp / "home").mkdir()
    cookie = tmp / "home" / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(16))
    cookie.chmod(0o400)
    (tmp / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\n"
        "loopback_users.guest = true\n"
        "log.console = false\n"
    )
    (tmp / "enabled_plugins").write_text("[].\n")
    (tmp / "env.conf").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
    env.update(
        HOME=str(tmp / "home"),
        RABBITMQ_NODENAME=node,
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(port),
        RABBITMQ_DIST_PORT=str(dist),
        RABBITMQ_CONF_ENV_FILE=str(tmp / "env.conf"),
        RABBITMQ_CONFIG_FILE=str(tmp / "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(tmp / "advanced.config"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(tmp / "enabled_plugins"),
        RABBITMQ_MNESIA_BASE=str(tmp / "mnesia"),
        RABBITMQ_LOG_BASE=str(tmp / "log"),
        RABBITMQ_PID_FILE=str(tmp / "rabbit.pid"),
        RABBITMQ_SERVER_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        ERL_EPMD_ADDRESS="127.0.0.1",
        ERL_EPMD_PORT=str(epmd),
    )
    return env


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextmanager
def private_rabbitmq(timeout: float = 120.0) -> Iterator[str]:
    """Start a private node and yield its AMQP URL; stop it (and its epmd) after.

    Raises RuntimeError, with the reason, when it cannot be started within ``timeout``.
    """
    scripts = sbin()
    if scripts is None or shutil.which("erl") is None:
        raise RuntimeError("no rabbitmq-server package (or no Erlang) on this machine")
    tmp = Path(tempfile.mkdtemp(prefix="rxfleet-rabbit-"))
    port, dist, epmd = free_port(), free_port(), free_port()
    node = f"rxbench{port}@localhost"
    env = _env(tmp, node, port, dist, epmd)
    log = (tmp / "server.out").open("wb")
    server = subprocess.Popen([str(scripts / "rabbitmq-server")], env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True,
                              cwd=tmp)  # fmt: skip
    try:
        deadline = time.monotonic() + timeout
        while not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                tail = (tmp / "server.out").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"private rabbitmq-server did not start: {tail}")
            time.sleep(0.5)
        yield f"amqp://guest:guest@127.0.0.1:{port}//"
    finally:
        subprocess.run([str(scripts / "rabbitmqctl"), "-n", node, "stop"], env=env,
                       capture_output=True, timeout=60, check=False)  # fmt: skip
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait()
        epmd_bin = shutil.which("epmd")
        if epmd_bin:  # the private epmd this node started (on its own port)
            subprocess.run([epmd_bin, "-port", str(epmd), "-kill"], env=env,
                           capture_output=True, timeout=10, check=False)  # fmt: skip
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)
