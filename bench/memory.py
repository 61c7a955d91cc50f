"""Producer memory: ``rxfleet enqueue`` of a large JSONL file into a private redis-server.

    python -m bench.memory [--claims 100000,1000000] [--with-workers] [--max-seconds 600]
        [--out bench/out/memory.json]

For each N a JSONL file of N synthetic claims (``rxfleet.claims.synth.write_jsonl``,
the sample mix: mostly payable, some rejected or malformed) is written to a private
temp dir, then ``rxfleet enqueue FILE`` (the producer only) runs against a private
redis-server:

* default: NO workers, so nothing drains the queues: the producer enqueues
  ``RXFLEET_MAX_INFLIGHT`` claims (``--max-inflight``, default the setting's 20,000)
  and then waits for room, so the figures show what Redis holds for a full window,
  whatever N (the run is stopped after ``--max-seconds``);
* ``--with-workers``: the Procfile's gateway, cpu, submit and beat run during the
  enqueue: the run goes through while the producer keeps at most the window in flight.

Figures per N:

* producer_peak_rss_mb: peak RSS of the enqueue process (psutil, every 50 ms);
* enqueue_seconds, and whether it finished within ``--max-seconds`` (else killed);
* redis used_memory / used_memory_peak (MB) once enqueue returned, and dbsize;
* keys by pattern (ids replaced by ``*``): count, type, summed length (LLEN,
  HLEN, XLEN, SCARD, ZCARD) and memory (``MEMORY USAGE``, sampled when many).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

import psutil
import redis

from bench.harness import ROOT, base_env, procfile_fleet
from rxfleet.claims import synth
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis

OUT = ROOT / "bench" / "out"
MB = 1024 * 1024
SAMPLE = 200
#: Ids replaced by ``*`` in key patterns: UUIDs, run ids, hex digests, numbers.
ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\d{8}T\d{6}-[0-9a-f]{6}|(?<![0-9A-Za-z])(?=[0-9a-f]*\d)[0-9a-f]{6,}(?![0-9A-Za-z])|\d+"
)
LENGTH = {"list": "llen", "hash": "hlen", "stream": "xlen", "set": "scard", "zset": "zcard"}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", default="100000,1000000", help="comma-separated Ns")
    parser.add_argument("--with-workers", action="store_true")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--max-inflight", type=int, default=20_000)
    parser.add_argument("--out", type=Path, default=OUT / "memory.json")
    return parser.parse_args()


@contextmanager
def redis_only(window: int) -> Iterator[dict[str, str]]:
    """A private redis-server and PostgreSQL and no worker: the env for the CLI."""
    server = LocalRedis(binary=shutil.which("redis-server")).start()
    database = LocalPostgres().start()
    try:
        yield base_env(RXFLEET_REDIS_URL=server.url, RXFLEET_DATABASE_URL=database.url,
                       RXFLEET_MAX_INFLIGHT=str(window), RXFLEET_SANDBOX="1",
                       RXFLEET_GATEWAY_URL="http://127.0.0.1:9/",
                       RXFLEET_TOKEN_URL="http://127.0.0.1:9/oauth2/token")  # fmt: skip
    finally:
        server.stop()
        database.stop()


@contextmanager
def with_workers(window: int) -> Iterator[dict[str, str]]:
    with procfile_fleet(extra_env={"RXFLEET_MAX_INFLIGHT": str(window)}) as fleet:
        yield fleet.env


def enqueue(env: dict[str, str], source: Path, max_seconds: float) -> dict[str, Any]:
    """Run the producer, polling its RSS; kill it past ``max_seconds``."""
    command = [sys.executable, "-m", "rxfleet.cli", "enqueue", str(source)]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip
    peak, finished = 0, True
    try:
        peak = _poll_rss(proc, started + max_seconds)
        finished = proc.poll() is not None
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
    return {
        "finished": finished,
        "returncode": proc.returncode,
        "enqueue_seconds": round(time.monotonic() - started, 1),
        "producer_peak_rss_mb": round(peak / MB, 1),
        "run_id": out.decode().strip(),
        "stderr": err.decode()[-500:],
    }


def _poll_rss(proc: subprocess.Popen[bytes], deadline: float) -> int:
    watched, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            peak = max(peak, watched.memory_info().rss)
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    return peak


def pattern(key: str) -> str:
    return ID.sub("*", key)


def key_patterns(client: redis.Redis) -> dict[str, dict[str, Any]]:
    """count, type, summed length and memory (sampled) per key pattern."""
    groups: dict[str, list[str]] = {}
    for key in client.scan_iter(count=1000):
        groups.setdefault(pattern(key), []).append(key)
    return {name: _group(client, keys) for name, keys in sorted(groups.items())}


def _group(client: redis.Redis, keys: list[str]) -> dict[str, Any]:
    sample = keys[:SAMPLE]
    kind = client.type(sample[0])
    pipe = client.pipeline(transaction=False)
    for key in sample:
        pipe.memory_usage(key, samples=0)
        if kind in LENGTH:
            getattr(pipe, LENGTH[kind])(key)
    replies = pipe.execute()
    step = 2 if kind in LENGTH else 1
    memory = sum(r or 0 for r in replies[::step]) * len(keys) / len(sample)
    length = sum(replies[1::2]) * len(keys) / len(sample) if step == 2 else None
    return {"count": len(keys), "type": kind, "length": length,
            "memory_mb": round(memory / MB, 2)}  # fmt: skip


def redis_figures(env: dict[str, str]) -> dict[str, Any]:
    client = redis.Redis.from_url(env["RXFLEET_REDIS_URL"], decode_responses=True)
    info = client.info("memory")
    return {
        "used_memory_mb": round(info["used_memory"] / MB, 1),
        "used_memory_peak_mb": round(info["used_memory_peak"] / MB, 1),
        "dbsize": client.dbsize(),
        "keys": key_patterns(client),
    }


def write_claims(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for item in synth.sample_claims(n):
            handle.write((item if isinstance(item, str) else json.dumps(item)) + "\n")


def measure(n: int, workers: bool, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    source = tmp / f"claims-{n}.jsonl"
    if not source.exists():
        write_claims(source, n)
    max_seconds, window = args.max_seconds, args.max_inflight
    figures: dict[str, Any] = {"claims": n, "workers": workers, "window": window,
                               "input_mb": round(source.stat().st_size / MB, 1)}  # fmt: skip
    fleet = with_workers(window) if workers else redis_only(window)
    with fleet as env:
        figures.update(enqueue(env, source, max_seconds))
        figures["redis"] = redis_figures(env)
    return figures


def show(f: dict[str, Any]) -> None:
    r = f["redis"]
    print(f"\n{f['claims']} claims ({f['input_mb']} MB), workers={f['workers']}: "
          f"enqueue {f['enqueue_seconds']} s finished={f['finished']} rc={f['returncode']}, "
          f"producer peak RSS {f['producer_peak_rss_mb']} MB, redis used_memory "
          f"{r['used_memory_mb']} MB (peak {r['used_memory_peak_mb']} MB), "
          f"{r['dbsize']} keys")  # fmt: skip
    for name, g in r["keys"].items():
        length = "" if g["length"] is None else f" length {g['length']:.0f}"
        print(f"    {name:<40} {g['count']:>8} x {g['type']:<7}{length:>16} "
              f"{g['memory_mb']:>9.2f} MB")  # fmt: skip


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    args = parse_args()
    signal.signal(signal.SIGTERM, _stop)
    results = []
    with tempfile.TemporaryDirectory(prefix="rxfleet-memory-") as tmp:
        for n in (int(x) for x in args.claims.split(",") if x.strip()):
            results.append(measure(n, args.with_workers, args, Path(tmp)))
            show(results[-1])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"\nwritten: {args.out}")


if __name__ == "__main__":
    main()
