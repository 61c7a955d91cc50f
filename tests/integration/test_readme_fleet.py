"""The README's fleet block, run as written: taken from README.md by its marker and
run by bash in a directory of its own (the Procfile, the samples, the venv), on a
private Redis and PostgreSQL and free ports that the block itself reads
(``RXFLEET_REDIS_URL``, ``RXFLEET_DATABASE_URL``, ``RXFLEET_SANDBOX_PORT``, and
the Procfile's ``RXFLEET_FLOWER_PORT``, ``RXFLEET_METRICS_PORT``): nothing else of
the block is changed. While it runs, a monitoring process holding neither PHI key
serves ``rxfleet stats`` and ``/metrics``.

The venv is the repository's own (``.venv`` in the block's directory links to it):
a fresh venv takes a fresh ``pip install -e .`` of every dependency (tens of seconds,
see the closing note), more than the suite's budget allows for one test. honcho is a
main dependency, so the README's first command installs what this block runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis
import requests

from bench.harness import ROOT
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis, free_port
from tests.integration.conftest import new_database

pytestmark = pytest.mark.integration

MARKER = "<!-- fleet-block:"
SAMPLE = ROOT / "samples" / "claims.jsonl"


def readme_block() -> str:
    """The fenced block right after the fleet-block marker in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(MARKER) + r".*?-->\n```bash\n(.*?)```", text, re.S)
    assert found, "README.md lost its fleet-block marker"
    return found.group(1)


@dataclass
class Block:
    """The block running in ``where``: its process, output, and what monitors saw."""

    proc: subprocess.Popen[str]
    where: Path
    env: dict[str, str]
    output: list[str] = field(default_factory=list)
    scrapes: list[str] = field(default_factory=list)


def _clean_env(**settings: str) -> dict[str, str]:
    """This environment without any RXFLEET_* setting, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}
    return {**env, **settings}


def _scrape(url: str, into: list[str], until: threading.Event) -> None:
    while not until.is_set():
        with contextlib.suppress(requests.RequestException):
            into.append(requests.get(url, timeout=2).text)
        until.wait(0.2)


@pytest.fixture(scope="module")
def block(pg_server: LocalPostgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Block]:
    where = tmp_path_factory.mktemp("readme-fleet")
    shutil.copy(ROOT / "Procfile", where / "Procfile")
    shutil.copytree(ROOT / "samples", where / "samples")
    shutil.copytree(ROOT / "workers", where / "workers")  # Flower's --conf=workers/flowerconfig.py
    (where / ".venv").symlink_to(Path(sys.prefix))
    server = LocalRedis(binary=shutil.which("redis-server")).start()
    env = _clean_env(
        RXFLEET_REDIS_URL=server.url,
        RXFLEET_DATABASE_URL=new_database(pg_server),
        RXFLEET_SANDBOX_PORT=str(free_port()),
        RXFLEET_FLOWER_PORT=str(free_port()),
        RXFLEET_METRICS_PORT=str(free_port()),
        RXFLEET_WEBHOOK_PORT=str(free_port()),
    )
    proc = subprocess.Popen(["bash", "-c", readme_block()], cwd=where, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    ran = Block(proc, where, env)
    threading.Thread(target=lambda: ran.output.extend(proc.stdout or []), daemon=True).start()
    metrics_url = f"http://127.0.0.1:{env['RXFLEET_METRICS_PORT']}/metrics"
    done = threading.Event()
    threading.Thread(target=_scrape, args=(metrics_url, ran.scrapes, done), daemon=True).start()
    try:
        yield ran
    finally:
        done.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        server.stop()


def _keyless_stats(env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rxfleet.cli", "stats", "--json"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip


def test_a_monitor_without_phi_keys_serves_stats_and_metrics_during_the_run(
    block: Block, tmp_path: Path
) -> None:
    """Neither RXFLEET_PHI_KEY nor RXFLEET_VAULT_KEY (nor a .env holding them: the
    monitor runs elsewhere), nor gateway settings: ``stats`` and the exporter answer."""
    monitor = _clean_env(
        RXFLEET_REDIS_URL=block.env["RXFLEET_REDIS_URL"],
        RXFLEET_DATABASE_URL=block.env["RXFLEET_DATABASE_URL"],
    )
    port = free_port()
    exporter = subprocess.Popen([sys.executable, "-m", "rxfleet.cli", "metrics", "--port",
                                 str(port)], cwd=tmp_path, env=monitor, text=True,
                                stderr=subprocess.PIPE)  # fmt: skip
    scrapes: list[str] = []
    done = threading.Event()
    scraper = threading.Thread(
        target=_scrape, args=(f"http://127.0.0.1:{port}/metrics", scrapes, done), daemon=True
    )
    scraper.start()
    try:
        during = _stats_during_the_run(block, monitor, tmp_path)
        assert during is not None, "the run ended before the monitor saw it: " + "".join(
            block.output[-20:]
        )
        _a_scrape_sees_the_run(block, scrapes)  # the exporter's own poll, while it runs
    finally:
        done.set()
        exporter.terminate()
        _, err = exporter.communicate(timeout=30)
    assert '"active_runs": 1' in during
    assert any("rxfleet_active_runs 1.0" in text for text in scrapes), err
    assert "Traceback" not in err


def _a_scrape_sees_the_run(block: Block, scrapes: list[str], seconds: float = 30) -> None:
    """Wait, while the run goes on, for a scrape that shows it (the stats above saw it
    first: a scrape a moment before may still have shown none)."""
    deadline = time.monotonic() + seconds
    while block.proc.poll() is None and time.monotonic() < deadline:
        if any("rxfleet_active_runs 1.0" in text for text in scrapes):
            return
        time.sleep(0.1)


def _stats_during_the_run(block: Block, monitor: dict[str, str], cwd: Path) -> str | None:
    """A keyless ``rxfleet stats --json`` that saw the run active, or None."""
    deadline = time.monotonic() + 150
    while block.proc.poll() is None and time.monotonic() < deadline:
        stats = _keyless_stats(monitor, cwd)
        assert stats.returncode == 0, stats.stderr
        if '"active_runs": 1' in stats.stdout:
            return stats.stdout
        time.sleep(0.2)
    return None


def test_the_readme_fleet_block_runs_as_written(block: Block) -> None:
    """The block ends by itself: honcho's fleet (gateway, cpu, submit, beat, flower,
    metrics) stayed up through the run, and the results file holds every claim."""
    block.proc.wait(240)
    output = "".join(block.output)
    results = block.where / "results.parquet"
    assert results.exists(), output
    rows = pq.read_table(results).num_rows
    assert rows == len(SAMPLE.read_text().splitlines()), output
    assert "exited with code 1" not in output and "exited with code 2" not in output, output
    assert any("rxfleet_claims_total" in text for text in block.scrapes), output
    assert (block.where / ".env").read_text().count("RXFLEET_") == 4  # keys, Flower, webhook
    broker = redis.Redis.from_url(block.env["RXFLEET_REDIS_URL"], decode_responses=True)
    for queue in ("rxfleet.cpu", "rxfleet.gateway"):  # each under an exchange of its own
        bound = broker.smembers(f"_kombu.binding.{queue}")
        assert {str(b).split("\x06\x16")[-1] for b in bound} == {queue}, bound
    assert "Traceback" not in output, output  # none at shutdown either
    # Celery's own task lines carry the link's ids, and each link run has a summary line.
    run_id = re.search(r"rxfleet: run (\S+)", output)
    assert run_id, output
    tag = f"[run_id={run_id.group(1)} link=submit batch=0 count=500"
    assert any("succeeded in" in line and tag in line for line in block.output), output
    assert any("link submit success in" in line and tag in line for line in block.output)
