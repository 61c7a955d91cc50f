"""``rxfleet sync`` without a portal: the Procfile line idles (a fleet without a portal
keeps running) and ends cleanly on SIGTERM; ``--drain`` is a usage error."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import ROOT, base_env, run_cli


def test_without_a_portal_sync_idles_until_sigterm_and_drain_is_refused(tmp_path: Path) -> None:
    env = base_env(RXFLEET_REDIS_URL="redis://127.0.0.1:1/0",
                   RXFLEET_DATABASE_URL="postgresql://127.0.0.1:1/none")  # fmt: skip
    refused = run_cli(env, "sync", "--drain", timeout=60)
    assert refused.returncode == 2
    assert "RXFLEET_PORTAL_URL is not set" in refused.stderr
    assert "Traceback" not in refused.stderr
    idle = subprocess.Popen([sys.executable, "-m", "rxfleet.cli", "sync"], cwd=ROOT, env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert idle.stderr is not None
        line = idle.stderr.readline()  # it says so, then waits
        assert "no payer portal to sync; idle" in line
        time.sleep(0.5)
        assert idle.poll() is None
        idle.send_signal(signal.SIGTERM)
        assert idle.wait(30) == 0
    finally:
        idle.kill()
        idle.wait()
        if idle.stderr is not None:
            idle.stderr.close()
