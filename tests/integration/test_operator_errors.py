"""What an operator sees when something is down or mistyped: one line naming the
cause, never a traceback; the exporter answers 503 while Redis is away."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from bench.harness import run_cli, wait_for
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis, free_port

pytestmark = pytest.mark.integration


def _env(**settings: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}, **settings}


def _other_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (lambda pg: _other_database(pg.url, "no_such_db"), "no such database at "),
        (lambda pg: f"postgresql://rx:pw@127.0.0.1:{free_port()}/rx",
         "connection refused (is PostgreSQL running there?) at 127.0.0.1:"),
        (lambda pg: "postgresql:/not a url", "RXFLEET_DATABASE_URL is not a PostgreSQL URL"),
    ],
)  # fmt: skip
def test_database_errors_name_their_cause(
    pg_server: LocalPostgres, make: object, cause: str
) -> None:
    url = make(pg_server)  # type: ignore[operator]
    done = run_cli(_env(RXFLEET_DATABASE_URL=url), "db", "upgrade", timeout=60)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and cause in lines[0], done.stderr
    assert lines[0].startswith("rxfleet: database: ")
    assert ":pw@" not in lines[0]  # the credentials (a temp dir may hold the letters pw)


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[tuple[LocalRedis, str, subprocess.Popen[str]]]:
    server = LocalRedis().start()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rxfleet.cli", "metrics", "--port", str(port)],
        cwd=tmp_path, env=_env(RXFLEET_REDIS_URL=server.url), text=True,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        yield server, url, proc
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
        server.stop()


def _status(url: str) -> int:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.ConnectionError:
        return 0


def test_the_exporter_answers_503_in_one_line_while_redis_is_away(
    exporter: tuple[LocalRedis, str, subprocess.Popen[str]],
) -> None:
    server, url, proc = exporter
    wait_for(lambda: _status(url) == 200, 30, "the exporter")
    server.stop()
    away = requests.get(url, timeout=30)
    assert away.status_code == 503
    assert away.text == "rxfleet metrics: Redis unavailable (ConnectionError)\n"
    assert proc.poll() is None  # still serving
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
