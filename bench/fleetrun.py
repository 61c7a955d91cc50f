"""The fleet contender of bench/throughput.py: ``rxfleet run`` against the Procfile's
processes, with the Redis command count and an optional py-spy profile."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.claimset import ClaimSet
from bench.harness import ROOT, procfile_fleet
from bench.sandbox import Sandbox, check_exactly_once

RATE = re.compile(r"(\d+) claims in ([\d.]+) s \((\d+) claims/s\)")
TOP = 12
#: Wrapper frames left out of the inclusive list (they hold every sample).
PLUMBING = ("threading.py", "concurrent/futures/", "celery/")


@dataclass
class FleetRun:
    seconds: float
    claims: int
    statuses: dict[str, int]
    gateway: dict[str, Any]
    redis: dict[str, Any]
    cli_claims_per_s: int | None
    profile: dict[str, Any] = field(default_factory=dict)

    def figures(self) -> dict[str, Any]:
        return {
            "answers": self.statuses,
            "gateway": self.gateway,
            "redis": self.redis,
            "cli_claims_per_s": self.cli_claims_per_s,
            "profile": self.profile,
        }


def commandstats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def redis_delta(before: dict[str, int], after: dict[str, int], n: int) -> dict[str, Any]:
    delta = Counter({k: after[k] - before.get(k, 0) for k in after})
    delta = +delta  # drop zero counts
    total = sum(delta.values())
    return {"total_calls": total, "per_claim": round(total / n, 2),
            "top": delta.most_common(TOP), "all": dict(delta)}  # fmt: skip


def run_cli(
    env: dict[str, str], source: Path, out: Path, batch_size: int | None
) -> tuple[float, str]:
    command = [sys.executable, "-m", "rxfleet.cli", "run", str(source), "-o", str(out),
               "--timeout", "3600"]  # fmt: skip
    if batch_size:
        command += ["--batch-size", str(batch_size)]
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"rxfleet run failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout


@dataclass(frozen=True)
class FleetOptions:
    """Non-default fleet settings (None: the Procfile's and the CLI's defaults)."""

    submit_concurrency: int | None = None
    batch_size: int | None = None
    profile: bool = False
    env: dict[str, str] = field(default_factory=dict)  # more RXFLEET_* settings for the fleet


def run_fleet(box: Sandbox, claims: ClaimSet, tmp: Path, options: FleetOptions) -> FleetRun:
    source, out = tmp / "fleet-input.jsonl", tmp / "fleet-results.jsonl"
    keys = claims.write_jsonl(source, "fleet-")
    concurrency = options.submit_concurrency
    extra = {"RXFLEET_SUBMIT_CONCURRENCY": str(concurrency)} if concurrency else {}
    extra.update(options.env)
    box.reset()  # before the fleet starts: its first token must stay valid
    with procfile_fleet(gateway_url=box.url, extra_env=extra) as fleet:
        client = redis.Redis.from_url(fleet.redis_url)
        warm_up(fleet.env, claims, tmp, options.batch_size)
        spy = Spy(fleet.procs["submit1"].pid, tmp) if options.profile else None
        before = commandstats(client)
        seconds, stdout = run_cli(fleet.env, source, out, options.batch_size)
        after = commandstats(client)
        profiled = spy.stop() if spy else {}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    match = RATE.search(stdout)
    return FleetRun(
        seconds=seconds,
        claims=len(rows),
        statuses=dict(Counter(str(r["status"]) for r in rows)),
        gateway=check_exactly_once(box.stats(), keys),
        redis=redis_delta(before, after, len(keys)),
        cli_claims_per_s=int(match.group(3)) if match else None,
        profile=profiled,
    )


WARM_UP_PREFIX = "warm-"


def warm_up(env: dict[str, str], claims: ClaimSet, tmp: Path, batch_size: int | None) -> None:
    """A long-running fleet is warm: its workers have imported their code, opened their
    Redis, database and gateway connections and hold a token. A first run of 20 claims
    (other keys, not counted) does that before the timed run; the timed ``rxfleet run``
    still pays its own start-up (imports, input hash, crosswalk) and its export."""
    source, out = tmp / "warm-input.jsonl", tmp / "warm-results.jsonl"
    warm = ClaimSet(claims.records[:20], claims.bodies[:20])
    warm.write_jsonl(source, WARM_UP_PREFIX)
    run_cli(env, source, out, batch_size)


class Spy:
    """``py-spy record`` on one process until ``stop``; top frames from its raw output."""

    def __init__(self, pid: int, tmp: Path) -> None:
        self.output = tmp / f"py-spy-{pid}.txt"
        self.error: str | None = None
        binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        command = [binary, "record", "--pid", str(pid), "--format", "raw", "--rate", "200",
                   "--output", str(self.output), "--nonblocking"]  # fmt: skip
        try:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError as exc:
            self.proc, self.error = None, f"cannot start py-spy ({exc})"
        time.sleep(1.0)  # attach before the run starts

    def stop(self) -> dict[str, Any]:
        if self.proc is None:
            return {"error": self.error}
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        if not self.output.exists():
            return {"error": f"py-spy wrote nothing: {err.decode()[-500:]}"}
        return top_frames(self.output.read_text())


def top_frames(raw: str) -> dict[str, Any]:
    """Own (leaf) and inclusive sample counts per frame, from py-spy's collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            if not any(part in frame for part in PLUMBING):
                inclusive[frame] += count
    return {"samples": total, "own": own.most_common(TOP), "inclusive": inclusive.most_common(TOP)}
