"""The CLI as a user runs it: exit codes, nothing enqueued on bad input, and a run
that times out picked up again by ``rxfleet wait`` once workers are there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import redis

from bench.harness import KEYS, ROOT, run_cli, run_command, stop_all
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis
from tests.integration.conftest import new_database

pytestmark = pytest.mark.integration

SAMPLE = ROOT / "samples" / "claims.jsonl"


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}
    return run_cli({**base, **(env or {})}, *args, timeout=timeout)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalRedis]:
    local = LocalRedis().start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def database(pg_server: LocalPostgres) -> str:
    return new_database(pg_server)


def _runs(url: str) -> int:
    return int(redis.Redis.from_url(url).zcard("rx:runs"))


def test_embedded_run_writes_parquet_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "results.parquet"
    done = cli("run", str(SAMPLE), "-o", str(out))
    assert done.returncode == 0, done.stderr
    table = pq.read_table(out)
    assert table.num_rows == len(SAMPLE.read_text().splitlines())
    assert table.column_names[:3] == ["claim_id", "status", "severity"]
    lines = [line.split("\t") for line in done.stdout.splitlines()]  # piped: TSV, no tables
    statuses = {f[1]: int(f[2]) for f in lines if f[0] == "status"}
    assert {"PAID", "REJECTED", "QUARANTINED"} <= set(statuses)
    assert sum(statuses.values()) == table.num_rows
    assert ["output", str(out)] in lines and any(f[0] == "claims_per_second" for f in lines)
    quarantined = [f for f in lines if f[0] == "quarantined"]
    assert quarantined and all(len(f) == 5 and f[4] for f in quarantined)  # codes whole
    assert "ephemeral keys" in done.stderr  # no keys given: it says so
    dry = cli("run", "--dry-run", "--json", str(SAMPLE))  # read and validate only
    assert dry.returncode == 0, dry.stderr
    found = json.loads(dry.stdout)
    assert found["total"] == table.num_rows and found["dry_run"] is True
    assert found["would_quarantine"] == statuses["QUARANTINED"]
    assert "ephemeral keys" not in dry.stderr  # no fleet was started


def test_run_json_prints_one_machine_readable_summary(tmp_path: Path) -> None:
    out = tmp_path / "results.jsonl"
    done = cli("run", "--json", str(SAMPLE), "-o", str(out))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)  # the whole of stdout is one JSON object
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary["total"] == len(rows) and summary["output"] == str(out)
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{6}", summary["run_id"])
    by_status = {s: sum(1 for r in rows if r["status"] == s) for s in summary["counts"]["status"]}
    assert summary["counts"]["status"] == by_status
    assert sum(summary["counts"]["route"].values()) == len(rows)
    assert summary["elapsed_seconds"] > 0


def test_dry_run_of_unreadable_input_exits_2(tmp_path: Path) -> None:
    bad = _write(tmp_path / "x.csv", "claim_id,member_name\n1,2\n")
    done = cli("run", "--dry-run", str(SAMPLE), str(bad))
    assert done.returncode == 2 and "unknown columns: member_name" in done.stderr
    piped = cli("run", "--dry-run", str(SAMPLE))
    assert piped.returncode == 0
    fields = dict(line.split("\t", 1) for line in piped.stdout.splitlines() if "\t" in line)
    assert int(fields["total"]) == len(SAMPLE.read_text().splitlines())


def test_version_and_help_show_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    from rxfleet import __version__
    from rxfleet.cli import main

    version = cli("--version")  # the installed command, in a process of its own
    assert version.returncode == 0 and version.stdout.strip() == f"rxfleet {__version__}"

    def helped(*command: str) -> str:  # in-process: argparse prints the help and exits 0
        with pytest.raises(SystemExit) as exited:
            main([*command, "--help"])
        assert exited.value.code == 0
        return capsys.readouterr().out

    for command in (["run"], ["dlq", "list"], ["gateway"], ["runs"], ["metrics"]):
        options = [ln for ln in helped(*command).splitlines() if ln.strip().startswith("-")]
        assert options
    listing = helped("dlq", "list")
    assert "(default: 50)" in listing and "(default: 0)" in listing
    assert "(default: 9808)" in helped("metrics")
    assert "--dry-run" in helped("run")


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d: d / "missing.jsonl", "missing.jsonl"),
        (lambda d: _write(d / "x.csv", "bin,pcn\n1,2\n"), "no claim_id column"),
        (
            lambda d: _write(d / "x.csv", "claim_id,member_name\n1,2\n"),
            "unknown columns: member_name",
        ),
        (lambda d: _write(d / "x.parquet", "not parquet"), "x.parquet"),
        (lambda d: _write(d / "x.txt", "hello"), "unknown format"),
    ],
)
def test_unreadable_input_exits_2_and_enqueues_nothing(
    server: LocalRedis,
    database: str,
    tmp_path: Path,
    make: Callable[[Path], Path],
    needle: str,
) -> None:
    bad = make(tmp_path)
    env = {"RXFLEET_REDIS_URL": server.url, "RXFLEET_DATABASE_URL": database, **KEYS}
    before = _runs(server.url)
    done = cli("run", str(SAMPLE), str(bad), env=env)
    assert done.returncode == 2
    assert needle in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert _runs(server.url) == before


def test_bad_output_extension_exits_2(tmp_path: Path) -> None:
    done = cli("run", str(SAMPLE), "-o", str(tmp_path / "out.xlsx"))
    assert done.returncode == 2 and ".jsonl, .csv or .parquet" in done.stderr


def test_real_redis_without_keys_refuses_to_start(server: LocalRedis, database: str) -> None:
    env = {"RXFLEET_REDIS_URL": server.url, "RXFLEET_DATABASE_URL": database}
    done = cli("run", str(SAMPLE), env=env)
    assert done.returncode == 2 and "RXFLEET_PHI_KEY" in done.stderr


SKEWED = Path(__file__).parent / "skewed_clock"  # its sitecustomize moves the clock


def _skewed(env: dict[str, str], seconds: float) -> dict[str, str]:
    return {**env, "PYTHONPATH": str(SKEWED), "SKEWED_CLOCK_OFFSET": str(seconds)}


def test_a_host_whose_clock_is_off_redis_refuses_to_start(
    server: LocalRedis, database: str
) -> None:
    """Ten minutes ahead (or behind), a worker and a command refuse in one line, before
    any lease, visibility or batch age is compared; a second off is tolerated."""
    env = {"RXFLEET_REDIS_URL": server.url, "RXFLEET_DATABASE_URL": database, **KEYS}
    ahead = cli("run", str(SAMPLE), env=_skewed(env, 600))
    assert ahead.returncode == 2 and len(ahead.stderr.strip().splitlines()) == 1
    assert "this host's clock is 600.0 s ahead of the Redis server's" in ahead.stderr
    behind = cli("runs", env=_skewed(env, -600))
    assert behind.returncode == 2 and "600.0 s behind" in behind.stderr
    assert cli("runs", env=_skewed(env, 1)).returncode == 0
    base = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}
    worker_env = _skewed({**base, **env, "RXFLEET_SANDBOX": "1"}, 600)
    worker_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
    worker = ["celery", "-A", "workers.app", "worker", "--pool", "solo", "-n", "skewed@%h"]
    done = run_command(worker_env, worker, timeout=60)
    assert done.returncode != 0
    assert "clock is 600.0 s ahead" in done.stdout + done.stderr


def test_timeout_exits_1_and_wait_picks_the_run_up(
    server: LocalRedis, database: str, tmp_path: Path
) -> None:
    env = {"RXFLEET_REDIS_URL": server.url, "RXFLEET_DATABASE_URL": database, **KEYS}
    timed_out = cli("run", str(SAMPLE), "--timeout", "1", env=env)
    assert timed_out.returncode == 1
    found = re.search(r"run (\S+)", timed_out.stderr)
    assert found, timed_out.stderr
    run_id = found.group(1)
    assert f"rxfleet wait {run_id}" in timed_out.stderr
    with _worker_and_gateway(env, tmp_path) as worker_env:
        out = tmp_path / "late.csv"
        waited = cli("wait", run_id, "-o", str(out), "--timeout", "120", env=worker_env)
        assert waited.returncode == 0, waited.stderr
        rows = out.read_text().splitlines()
        assert len(rows) == 1 + len(SAMPLE.read_text().splitlines())
        exported = cli("results", run_id, "-o", str(tmp_path / "again.jsonl"), env=worker_env)
        assert exported.returncode == 0
        dead = cli("dlq", "list", "--run", run_id, "--limit", "500", env=worker_env)
        assert dead.returncode == 0
        entries = [json.loads(line) for line in dead.stdout.splitlines()]  # piped: JSON lines
        quarantined = [row for row in rows[1:] if ",QUARANTINED," in row]
        assert len([e for e in entries if e["route"] == "DEAD_LETTER"]) == len(quarantined) > 0
        assert all(e["source"].endswith("claims.jsonl") and e["line"] > 0 for e in entries)
        status = cli("token", "status", env=worker_env)
        state = json.loads(status.stdout)
        assert state["state"] == "valid" and state["counters"]["fetches"] >= 1
        assert state["gateway"]["breaker"] == "closed" and state["gateway"]["pause_seconds"] == 0
        assert "access_token" not in status.stdout


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


class _worker_and_gateway:
    def __init__(self, env: dict[str, str], tmp: Path) -> None:
        from rxfleet.embedded.redis_server import free_port

        self.port = free_port()
        gateway = f"http://127.0.0.1:{self.port}"
        self.env = {
            **env,
            "RXFLEET_GATEWAY_URL": gateway,
            "RXFLEET_TOKEN_URL": gateway + "/oauth2/token",
        }
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: list[object] = []

    def __enter__(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")} | self.env
        base["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"
        for args in (
            ["rxfleet", "gateway", "--port", str(self.port)],
            [
                "celery",
                "-A",
                "workers.app",
                "worker",
                "-Q",
                "rxfleet.cpu,rxfleet.gateway",
                "--pool",
                "threads",
                "-c",
                "4",
                "-n",
                "late@%h",
            ],
        ):
            log = (self.tmp / f"{args[0]}.log").open("w")
            self.logs.append(log)
            self.procs.append(
                subprocess.Popen(
                    args,
                    cwd=ROOT,
                    env=base,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        return self.env

    def __exit__(self, *_: object) -> None:
        stop_all(self.procs)
        for log in self.logs:
            log.close()  # type: ignore[attr-defined]


def test_a_worker_without_the_vault_key_refuses_to_start(server: LocalRedis) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RXFLEET_")}
    env["RXFLEET_REDIS_URL"] = server.url
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    worker = ["celery", "-A", "workers.app", "worker", "--pool", "solo", "-n", "nokeys@%h"]
    done = run_command(env, worker, timeout=60)
    assert done.returncode != 0
    assert "RXFLEET_VAULT_KEY must be set" in done.stdout + done.stderr
