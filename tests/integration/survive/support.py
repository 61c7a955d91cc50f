"""What the survive tests share: their claims, runs and the exactly-once check."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from bench.harness import FLOWER_AUTH, Fleet
from rxfleet.claims import synth


def claims(path: Path, prefix: str, n: int, poison_at: int | None = None) -> list[str]:
    def poison(index: int, claim: dict[str, Any]) -> None:
        if index == poison_at:
            claim["claim_id"] = f"POISON{index:05d}"

    return synth.write_claims(
        path, n, seed=prefix, claim_id=lambda i: f"{prefix}{i:05d}", edit=poison
    )


def start_run(
    chaos: Fleet, tmp_path: Path, prefix: str, n: int, *options: str
) -> tuple[list[str], Path, subprocess.Popen[str], str]:
    """``n`` claims run in batches of 20 with ``options``: (ids, output, process, run id)."""
    ids = claims(tmp_path / "claims.jsonl", prefix, n)
    out = tmp_path / "out.jsonl"
    args = ("run", str(tmp_path / "claims.jsonl"), "-o", str(out), "--batch-size", "20")
    run = chaos.popen(*args, *options)
    return ids, out, run, run_started(run)


def results_reach(fleet: Fleet, run_id: str, count: int) -> Callable[[], bool]:
    return lambda: fleet.results_count(run_id) >= count


def run_id_of(stderr: str) -> str:
    found = re.search(r"rxfleet: (?:run|picking up run) (\S+)", stderr)
    assert found, stderr
    return found.group(1)


def exactly_once(fleet: Fleet, out: Path, ids: list[str]) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["claim_id"] for r in rows) == sorted(ids)  # each claim once, none missing
    assert all(r["status"] for r in rows)
    claims = fleet.gateway_claims()  # every key of a claim counted under it
    twice = [k for k in ids if claims.get(k, {}).get("adjudications", 0) > 1]
    assert twice == []
    return rows


def run_started(proc: subprocess.Popen[str]) -> str:
    """The run id, from the first line of stderr (printed before any claim is read)."""
    assert proc.stderr is not None
    line = proc.stderr.readline()
    return run_id_of(line)


def failed_tasks(flower: str) -> list[dict[str, Any]]:
    tasks = requests.get(f"{flower}/api/tasks", auth=FLOWER_AUTH, timeout=30).json()
    return [t for t in tasks.values() if t.get("state") == "FAILURE"]


def exit_after_interrupt(run: subprocess.Popen[str]) -> str:
    """The stderr of a process that should end within 10 s of its SIGINT; if it does not,
    the test fails with the stack of each of its threads (faulthandler on SIGABRT)."""
    try:
        return run.communicate(timeout=10)[1]
    except subprocess.TimeoutExpired:
        run.send_signal(signal.SIGABRT)
        dump = run.communicate(timeout=10)[1]
        pytest.fail(f"no exit within 10 s of SIGINT; its threads:\n{dump}")
