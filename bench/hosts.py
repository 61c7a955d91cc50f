"""Network namespaces as hosts: a bridge in this (the root) namespace, and per "host"
a namespace joined to it by a veth pair, each with its own address on a /24 of
10.x.y.0 picked at random and checked free (parallel runs never collide: names and
subnet carry a random tag). The root namespace holds the bridge's address (``.1``),
where the tests bind Redis, PostgreSQL and the sandbox gateway; host ``i`` is
``.(10 + i)``. ``cut`` takes a host's link down (its NIC unplugged).

Making namespaces needs root and ``ip`` (iproute2): ``missing()`` says why not.
Everything made is removed on exit, whatever happened.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field


def missing() -> str | None:
    """Why this machine cannot make network namespaces here, or None when it can."""
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2) on PATH"
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    probe = f"rxprobe{secrets.token_hex(3)}"
    made = _ip("netns", "add", probe, check=False)
    _ip("netns", "del", probe, check=False)
    return None if made.returncode == 0 else f"`ip netns add` failed: {made.stderr.strip()}"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass
class Hosts:
    """The namespaces made, by host number (1, 2, ...)."""

    tag: str
    net: str  # "10.x.y"
    namespaces: dict[int, str] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"rxb{self.tag}"

    @property
    def root(self) -> str:
        """The root namespace's address on the bridge (servers bind here)."""
        return f"{self.net}.1"

    @property
    def network(self) -> str:
        return f"{self.net}.0/24"

    def address(self, host: int) -> str:
        return f"{self.net}.{10 + host}"

    def wrap(self, host: int) -> list[str]:
        """The command prefix that runs a process on ``host``."""
        return ["ip", "netns", "exec", self.namespaces[host]]

    def nic(self, host: int) -> str:
        return f"rn{self.tag}{host}"

    def cut(self, host: int) -> None:
        """Unplug ``host``: its link goes down; its processes live on, cut off."""
        _ip("netns", "exec", self.namespaces[host], "ip", "link", "set", self.nic(host), "down")

    def restore(self, host: int) -> None:
        """Plug ``host`` back in."""
        _ip("netns", "exec", self.namespaces[host], "ip", "link", "set", self.nic(host), "up")


def _free_net() -> str:
    taken = _ip("-o", "addr").stdout
    for _ in range(100):
        net = f"10.{random.randint(200, 249)}.{random.randint(0, 255)}"
        if f" {net}." not in taken:
            return net
    raise RuntimeError("no free 10.x.y.0/24 for the test's bridge")


def _add_host(hosts: Hosts, host: int) -> None:
    ns, outer, inner = f"rxh{hosts.tag}{host}", f"rv{hosts.tag}{host}", hosts.nic(host)
    _ip("netns", "add", ns)
    hosts.namespaces[host] = ns
    _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
    _ip("link", "set", inner, "netns", ns)
    _ip("link", "set", outer, "master", hosts.bridge)
    _ip("link", "set", outer, "up")
    inside = ["netns", "exec", ns, "ip"]
    _ip(*inside, "addr", "add", f"{hosts.address(host)}/24", "dev", inner)
    _ip(*inside, "link", "set", inner, "up")
    _ip(*inside, "link", "set", "lo", "up")


@contextlib.contextmanager
def namespaces(count: int) -> Iterator[Hosts]:
    """``count`` hosts on a fresh bridge; all of it removed on exit."""
    hosts = Hosts(tag=secrets.token_hex(3), net=_free_net())
    try:
        _ip("link", "add", hosts.bridge, "type", "bridge")
        _ip("addr", "add", f"{hosts.root}/24", "dev", hosts.bridge)
        _ip("link", "set", hosts.bridge, "up")
        for host in range(1, count + 1):
            _add_host(hosts, host)
        yield hosts
    finally:
        for ns in hosts.namespaces.values():
            _ip("netns", "del", ns, check=False)  # its veth pair goes with it
        _ip("link", "del", hosts.bridge, check=False)
