"""Finds Prometheus's ``promtool`` for the tests that check rule files.

On PATH when installed (Debian's ``prometheus`` package); otherwise the package is
fetched with ``apt-get download`` and unpacked with ``dpkg -x`` into a cache folder
(no root, no service started). A machine with neither cannot check the rules, and
the test that needs it fails saying so: a rules file nobody checked is not done.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rxfleet-tests"
UNPACKED = CACHE / "prometheus" / "usr" / "bin" / "promtool"


def find_promtool() -> Path:
    """The path of a working promtool, unpacking Debian's package once if needed."""
    on_path = shutil.which("promtool")
    if on_path:
        return Path(on_path)
    if not UNPACKED.exists():
        _unpack()
    return UNPACKED


def _unpack() -> None:
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        raise RuntimeError("promtool is not on PATH and apt-get/dpkg are not here to fetch it")
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run(
            ["apt-get", "download", "-q", "prometheus"], cwd=folder, check=True, timeout=300
        )
        (deb,) = Path(folder).glob("prometheus_*.deb")
        target = UNPACKED.parents[2]
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg", "-x", str(deb), str(target)], check=True, timeout=120)
