"""Issue 4's proofs at scale: the gateway misbehaving on purpose, a real
redis-server, the Procfile's processes (cpu worker, two submit workers, beat,
the sandbox gateway), 10k claims per scenario; and issue 10's at scale: the
fleet killed at will under a supervisor (survive, survive-empty, rabbitmq).

    python -m bench.chaos [--claims 10000] [--scenario NAME ...]

NAME: tokens, throttle, drops, all (those three), survive, survive-empty,
faults20, rabbitmq. Figures are merged into bench/out/chaos.json (one key a scenario).

Each scenario prints what it proves, from the gateway's own log and counts and
from the fleet's audit stream; figures also go to bench/out/chaos.json.

* tokens: 5-second tokens, every 200th request revokes the live one. Proves:
  no claim fails for authentication; token fetches <= rotations + 1.
* throttle: 429/503 with Retry-After (seconds and HTTP-date) for 1.5% of keys.
  Proves: no retry of a claim before its Retry-After (gateway log); no request
  passes the fleet's gate during an announced pause (audit), and every request
  the gateway saw start inside a pause passed the gate before it (in flight).
* drops: responses lost after adjudication (1%), connections dropped (1%),
  5 ms latency. Proves: nothing adjudicated twice (per-key counts), every claim
  terminal, and each lost response cost one replay, not a second adjudication.
Every scenario also routes 1% of claims to an unknown BIN/PCN: one 404 request
in all, not one per claim.

The fault scenarios below all use issue 10's gateway (``FAULTS``: 5% responses
lost after adjudication, 5% connections dropped before, 10% 503 without
Retry-After, 15 ms latency) and the production settings (defaults: visibility
timeout 100 s, stall sweep 300 s), with every Procfile process under a
supervisor that restarts it when it exits (bench/harness.py):

* survive: ``--claims`` claims (10k); redis-server with AOF, appendfsync everysec;
  one ``rxfleet run`` during which 5 worker main processes (cpu or submit, at
  random moments of its first ``--kill-window`` seconds) are SIGKILLed, and
  Redis is SIGKILLed once (at 30-60% of the window) and restarted from its
  AOF. Proves: exit 0, every claim exactly once in the results file, none
  adjudicated twice (the gateway's per-key counts).
* survive-empty: the same, but Redis restarted empty; the run cannot finish
  (``--empty-timeout``) and ``rxfleet resume RUN_ID -o OUT`` finishes it.
* faults20: 3,000 claims with the faults, no kills, against the same 3,000 on
  the same gateway without faults (same latency): claims/s of each.
* rabbitmq: 2,000 claims (batches of 100, a 200 ms gateway without faults) with
  RXFLEET_BROKER_URL on a private RabbitMQ node (bench/rabbitmq.py); a submit
  worker SIGKILLed 0.5 s after it received a batch (mid-window: its claims
  leased), and again at receipt (nothing leased yet); how long the run took to
  finish after the kill, against the mid-window kill on the Redis broker.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import redis
import requests

from bench.harness import ROOT, AofRedis, Fleet, adjudicated_twice, procfile_fleet
from bench.rabbitmq import private_rabbitmq
from rxfleet.claims import synth
from rxfleet.gateway.sandbox.scenario import claim_of

OUT = ROOT / "bench" / "out"
SCENARIOS: dict[str, dict[str, Any]] = {
    "tokens": {"seed": 1, "token_lifetime": 5, "revoke_every": 200},
    "throttle": {
        "seed": 2,
        "throttles": [
            {"status": 429, "rate": 0.01, "retry_after": 2, "retry_after_format": "delta"},
            {"status": 503, "rate": 0.005, "retry_after": 2, "retry_after_format": "http-date"},
        ],
    },
    "drops": {
        "seed": 3,
        "drops": [{"rate": 0.01, "after_adjudication": True}, {"rate": 0.01}],
        "latency_ms": 5,
    },
}


def write_claims(path: Path, n: int) -> list[str]:
    """``n`` payable claims (ids ``K0000000``...), 1% of them to an unknown BIN/PCN."""
    return synth.write_claims(path, n, seed=42, claim_id=lambda i: f"K{i:07d}", edit=_unrouted)


def _unrouted(index: int, claim: dict[str, Any]) -> None:
    if index % 100 == 7:
        claim["bin"], claim["pcn"] = "777777", "NOSUCHPCN"


def run_scenario(name: str, claims: Path, count: int) -> dict[str, Any]:
    scenario = Path(tempfile.mkdtemp()) / f"{name}.json"
    scenario.write_text(json.dumps(SCENARIOS[name]))
    with procfile_fleet(submit_workers=2, scenario=scenario) as fleet:
        started = time.monotonic()
        out = Path(fleet.tmp) / "results.jsonl"
        cli = subprocess.run(
            [sys.executable, "-m", "rxfleet.cli", "run", str(claims), "-o", str(out),
             "--timeout", "1200"],
            cwd=ROOT, env=fleet.env, capture_output=True, text=True,
        )  # fmt: skip
        wall = time.monotonic() - started
        if cli.returncode != 0:
            raise SystemExit(f"{name}: rxfleet run failed: {cli.stderr}")
        run_id = cli.stdout.split()[1]
        stats = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=30).json()
        client = redis.Redis.from_url(fleet.redis_url, decode_responses=True)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        figures = _common(rows, stats, count, wall)
        figures.update(CHECKS[name](client, run_id, rows, stats))
    return figures


def _common(
    rows: list[dict[str, Any]], stats: dict[str, Any], count: int, wall: float
) -> dict[str, Any]:
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    misses = [r for r in rows if r["reject_codes"] == ["04"]]
    return {
        "claims": len(rows),
        "all_terminal": len(rows) == count and all(r["status"] for r in rows),
        "statuses": statuses,
        "wall_s": round(wall, 1),
        "claims_per_s": round(len(rows) / wall, 1),
        "gateway_requests": stats["requests"],
        "adjudicated_twice": adjudicated_twice(stats),
        "route_miss_claims": len(misses),
        "route_miss_requests": stats["by_status"].get("404", 0),
        "rejected_99": sum(1 for r in rows if r["reject_codes"] == ["99"]),
    }


def _tokens(
    client: redis.Redis, run_id: str, rows: list[dict[str, Any]], stats: dict[str, Any]
) -> dict[str, Any]:
    rotations = int(client.hget("rx:token", "version") or 0)
    auth = client.hgetall("rx:token:stats")
    return {
        "token_fetches": stats["token_fetches"],
        "rotations": rotations,
        "fetches_le_rotations_plus_1": stats["token_fetches"] <= rotations + 1,
        "http_401": stats["by_status"].get("401", 0),
        "rej_001": int(auth.get("auth_REJ_001", 0)),
        "rej_004": int(auth.get("auth_REJ_004", 0)),
        "failed_for_auth": sum(
            1 for r in rows if r["status"] != "PAID" and r["reject_codes"] != ["04"]
        ),
    }


def _attempts(client: redis.Redis, run_id: str) -> list[dict[str, Any]]:
    entries = cast(list[tuple[str, dict[str, str]]], client.xrange(f"rx:run:{run_id}:audit"))
    events = (json.loads(d["event"]) for _, d in entries)
    return [e for e in events if e["stage"] == "attempt"]


def _throttle(
    client: redis.Redis, run_id: str, rows: list[dict[str, Any]], stats: dict[str, Any]
) -> dict[str, Any]:
    log = [e for e in stats["log"] if e["path"] == "/v1/claims"]
    told = [e for e in log if e.get("not_before")]
    early = 0
    by_key: dict[str, list[dict[str, Any]]] = {}
    for entry in log:
        by_key.setdefault(entry["key"], []).append(entry)
    for entry in told:
        later = [e["started"] for e in by_key[entry["key"]] if e["started"] > entry["finished"]]
        early += bool(later) and min(later) < entry["not_before"]
    pauses = [json.loads(p) for p in client.lrange("rx:gateway:pauses", 0, -1)]
    attempts = _attempts(client, run_id)
    gated = sum(1 for p in pauses for a in attempts if p["set_at"] < a["gate_at"] < p["until"])
    inside = [(p, e) for p in pauses for e in log if p["set_at"] < e["started"] < p["until"]]
    gates: dict[str, list[float]] = {}
    for a in attempts:
        gates.setdefault(a["claim_id"], []).append(a["gate_at"])
    not_in_flight = sum(
        1 for p, e in inside if not any(g <= p["set_at"] for g in gates.get(claim_of(e["key"]), []))
    )
    return {
        "told_to_wait": len(told),
        "retries_before_retry_after": early,
        "fleet_pauses": len(pauses),
        "attempts_gated_during_pause": gated,
        "gateway_starts_during_pause": len(inside),
        "of_which_not_in_flight": not_in_flight,
    }


def _drops(
    client: redis.Redis, run_id: str, rows: list[dict[str, Any]], stats: dict[str, Any]
) -> dict[str, Any]:
    keys = stats["keys"]
    return {
        "dropped": stats["by_status"].get("dropped", 0),
        "replayed_answers": sum(1 for e in stats["log"] if e.get("replayed")),
        "keys_with_more_requests_than_adjudications": sum(
            1 for v in keys.values() if v["requests"] > v["adjudications"]
        ),
    }


CHECKS = {"tokens": _tokens, "throttle": _throttle, "drops": _drops}


# -- issue 10 at scale: kills under a supervisor ----------------------------------

FAULTS = {
    "seed": 10,
    "drops": [{"rate": 0.05, "after_adjudication": True}, {"rate": 0.05}],
    "throttles": [{"status": 503, "rate": 0.10, "retry_after": None}],
    "latency_ms": 15,
}
CALM = {"seed": 10, "latency_ms": 15}  # the same gateway without faults
WORKERS = ("cpu", "submit1", "submit2")
RUN_ID = re.compile(r"rxfleet: (?:run|picking up run) (\S+)")


def _scenario_file(config: dict[str, Any]) -> Path:
    text = json.dumps(config, sort_keys=True)
    path = OUT / f"scenario-{hashlib.sha256(text.encode()).hexdigest()[:12]}.json"
    path.write_text(text)
    return path


def _cli(fleet: Fleet, *args: str) -> list[str]:
    return [sys.executable, "-m", "rxfleet.cli", *args]


@dataclass
class Lines:
    """Drains a pipe in a thread (stderr of a CLI), keeping every line."""

    pipe: IO[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.pipe:
            self.lines.append(line.rstrip("\n"))

    def run_id(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                found = RUN_ID.search(line)
                if found:
                    return found.group(1)
            time.sleep(0.05)
        raise SystemExit(f"no run id on stderr: {self.lines}")

    def text(self) -> str:
        self.thread.join(10)
        return "\n".join(self.lines)


@dataclass
class Chaos:
    """Kills what ``plan`` names, in order, each at its moment: ``when`` seconds after
    ``started`` (``by_time``), else once the database holds that share of the
    results. ``redis`` is SIGKILLed and restarted (``empty``: without its data)
    after ``redis_down`` s, as its supervisor would; a worker name has its main
    process SIGKILLed and is left to the fleet's supervisor."""

    fleet: Fleet
    total: int
    plan: list[tuple[float, str]]
    started: float
    by_time: bool = True
    trigger: Callable[[], bool] | None = None  # instead of ``when``, for every entry
    empty: bool = False
    redis_down: float = 2.0
    events: list[dict[str, Any]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._run, name="chaos", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for when, what in sorted(self.plan):
            while not self.stop.is_set() and not self._due(when):
                self.stop.wait(0.1)
            if self.stop.is_set():
                return
            self._act(what)

    def _due(self, when: float) -> bool:
        if self.trigger is not None:
            return self.trigger()
        if self.by_time:
            return time.monotonic() - self.started >= when
        return self.fleet.results_count() >= when * self.total

    def _act(self, what: str) -> None:
        progress = self.fleet.results_count()
        at = time.monotonic()
        if what == "redis":
            self.fleet.server.kill()
            time.sleep(self.redis_down)
            self.fleet.server.restart(empty=self.empty)
        else:
            self.fleet.kill(what)
        self.events.append({"what": what, "at": at, "t_s": round(at - self.started, 1),
                            "recorded": progress})  # fmt: skip
        print(f"  chaos: {what} SIGKILLed at {at - self.started:.1f} s, {progress} recorded",
              flush=True)  # fmt: skip

    def finish(self) -> None:
        self.stop.set()
        self.thread.join()


def _check(
    out: Path, ids: list[str], fleet: Fleet, wall: float
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    stats = requests.get(fleet.gateway + "/v1/_sandbox/stats", timeout=60).json()
    seen = [r["claim_id"] for r in rows]
    figures = _common(rows, stats, len(ids), wall)
    figures.update(
        exactly_once=sorted(seen) == sorted(ids),
        duplicates=len(seen) - len(set(seen)),
        missing=len(set(ids) - set(seen)),
        dropped=stats["by_status"].get("dropped", 0),
        http_503=stats["by_status"].get("503", 0),
        replayed_answers=sum(1 for e in stats["log"] if e.get("replayed")),
    )
    return figures, rows


def _restarts(fleet: Fleet, started: float) -> dict[str, Any]:
    by: dict[str, int] = {}
    for _, name in fleet.restarts:
        by[name] = by.get(name, 0) + 1
    return {"restarts": len(fleet.restarts), "restarts_by_process": by,
            "restart_times_s": [round(t - started, 1) for t, _ in fleet.restarts]}  # fmt: skip


def survive(
    claims: Path, ids: list[str], *, empty: bool, seed: int, window: float, timeout: int
) -> dict[str, Any]:
    """5 worker kills at random moments of the first ``window`` s of the run, and
    one Redis kill at 30-60% of it; ``timeout``: the run's (survive-empty)."""
    rng = random.Random(seed)
    plan = [(rng.uniform(3, window), rng.choice(WORKERS)) for _ in range(5)]
    plan.append((rng.uniform(0.3, 0.6) * window, "redis"))
    server = AofRedis(binary=shutil.which("redis-server"))
    scenario = _scenario_file(FAULTS)
    with procfile_fleet(
        submit_workers=2, scenario=scenario, server=server, supervised=True
    ) as fleet:
        out = fleet.tmp / "results.jsonl"
        started = time.monotonic()
        run_timeout = timeout if empty else 3000
        run = subprocess.Popen(_cli(fleet, "run", str(claims), "-o", str(out), "--timeout",
                                    str(run_timeout)), cwd=ROOT, env=fleet.env,
                               stdout=(fleet.tmp / "run.out").open("w"),
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
        assert run.stderr is not None
        stderr = Lines(run.stderr)
        chaos = Chaos(fleet, len(ids), plan, started, empty=empty)
        run_id = stderr.run_id()
        code = run.wait()
        ran = time.monotonic()
        figures: dict[str, Any] = {"run_id": run_id, "run_exit": code,
                                   "run_s": round(ran - started, 1)}  # fmt: skip
        if empty:
            figures.update(_resume(fleet, run_id, out))
        finished = time.monotonic()
        chaos.finish()
        wall = finished - started
        checked, _ = _check(out, ids, fleet, wall)
        figures.update(checked)
        kills = [e for e in chaos.events if e["what"] != "redis"]
        last = max((e["at"] for e in chaos.events), default=finished)
        figures.update(
            plan=[(round(f, 3), w) for f, w in sorted(plan)],
            events=[{k: v for k, v in e.items() if k != "at"} for e in chaos.events],
            worker_kills=len(kills),
            redis_kills=sum(1 for e in chaos.events if e["what"] == "redis"),
            last_kill_to_finish_s=round(finished - last, 1),
            run_stderr_tail=stderr.text().splitlines()[-6:],
            **_restarts(fleet, started),
        )
        figures["unplanned_restarts"] = figures["restarts"] - len(kills)
        # the run outran the kill window: not the scenario asked for (a shorter --kill-window)
        figures["all_kills_mid_run"] = len(kills) == 5 and figures["redis_kills"] == 1
    return figures


def _resume(fleet: Fleet, run_id: str, out: Path) -> dict[str, Any]:
    started = time.monotonic()
    done = subprocess.run(_cli(fleet, "resume", run_id, "-o", str(out), "--timeout", "3000"),
                          cwd=ROOT, env=fleet.env, capture_output=True, text=True)  # fmt: skip
    found = re.search(r"(\d+) claims needed enqueueing again", done.stderr)
    return {
        "resume_exit": done.returncode,
        "resume_s": round(time.monotonic() - started, 1),
        "re_enqueued": int(found.group(1)) if found else None,
        "resume_stderr_tail": done.stderr.splitlines()[-6:],
    }


def _plain(claims: Path, ids: list[str], config: dict[str, Any]) -> dict[str, Any]:
    with procfile_fleet(submit_workers=2, scenario=_scenario_file(config)) as fleet:
        out = fleet.tmp / "results.jsonl"
        started = time.monotonic()
        cli = subprocess.run(_cli(fleet, "run", str(claims), "-o", str(out), "--timeout", "1200"),
                             cwd=ROOT, env=fleet.env, capture_output=True, text=True)  # fmt: skip
        wall = time.monotonic() - started
        figures, _ = _check(out, ids, fleet, wall)
        figures["run_exit"] = cli.returncode
        figures["loadavg_1m_after"] = round(os.getloadavg()[0], 2)  # a shared machine
    return figures


def faults20(claims: Path, ids: list[str]) -> dict[str, Any]:
    faults = _plain(claims, ids, FAULTS)
    calm = _plain(claims, ids, CALM)
    return {
        "faults": faults,
        "no_faults": calm,
        "claims_per_s_ratio": round(faults["claims_per_s"] / calm["claims_per_s"], 3),
    }


def _holding(log: Path, delay: float) -> Callable[[], bool]:
    """True ``delay`` s after the worker logging to ``log`` received a submit task
    (200 ms a request: at 0 it has the message unacknowledged; at 0.5 s it is also
    mid-window, its claims leased)."""
    seen: list[float] = []

    def received() -> bool:
        if (
            not seen
            and log.exists()
            and "tasks.submit.submit[" in log.read_text("utf-8", "replace")
        ):
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() - seen[0] >= delay

    return received


def _killed_submit(
    claims: Path, ids: list[str], extra: dict[str, str], delay: float
) -> dict[str, Any]:
    slow = {**CALM, "latency_ms": 200}
    with procfile_fleet(
        submit_workers=2, scenario=_scenario_file(slow), extra_env=extra, supervised=True
    ) as fleet:
        out = fleet.tmp / "results.jsonl"
        started = time.monotonic()
        run = subprocess.Popen(_cli(fleet, "run", str(claims), "-o", str(out), "--batch-size",
                                    "100", "--timeout", "1200"), cwd=ROOT, env=fleet.env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)  # fmt: skip
        assert run.stderr is not None
        stderr = Lines(run.stderr)
        chaos = Chaos(fleet, len(ids), [(0.0, "submit1")], started,
                      trigger=_holding(fleet.tmp / "submit1.log", delay))  # fmt: skip
        code = run.wait()
        finished = time.monotonic()
        chaos.finish()
        figures, _ = _check(out, ids, fleet, finished - started)
        killed = chaos.events[0] if chaos.events else None
        figures.update(
            run_exit=code,
            killed_at_s=killed["t_s"] if killed else None,
            killed_at_recorded=killed["recorded"] if killed else None,
            finished_after_kill_s=round(finished - killed["at"], 1) if killed else None,
            run_stderr_tail=stderr.text().splitlines()[-4:],
            **_restarts(fleet, started),
        )
    return figures


def rabbitmq(claims: Path, ids: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    try:
        with private_rabbitmq() as url:
            figures["broker"] = url.split("@")[1]
            amqp = {"RXFLEET_BROKER_URL": url}
            figures["rabbitmq"] = _killed_submit(claims, ids, amqp, 0.5)
            figures["rabbitmq_at_receipt"] = _killed_submit(claims, ids, amqp, 0.0)
    except RuntimeError as exc:
        figures["rabbitmq"] = {"started": False, "reason": str(exc)}
    figures["redis_broker"] = _killed_submit(claims, ids, {}, 0.5)
    return figures


LONG: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "survive": lambda a: survive(
        *_input(a.claims), empty=False, seed=a.seed, window=a.kill_window, timeout=0
    ),
    "survive-empty": lambda a: survive(
        *_input(a.claims),
        empty=True,
        seed=a.seed + 1,
        window=a.kill_window,
        timeout=a.empty_timeout,
    ),
    "faults20": lambda a: faults20(*_input(3000)),
    "rabbitmq": lambda a: rabbitmq(*_input(2000)),
}


def _input(count: int) -> tuple[Path, list[str]]:
    path = OUT / f"chaos-{count}.jsonl"
    return path, write_claims(path, count)


def summary(name: str, figures: dict[str, Any]) -> str:
    """One line of what a scenario proves."""
    if name == "faults20":
        f, c = figures["faults"], figures["no_faults"]
        return (f"faults20: {f['claims_per_s']} claims/s with 20% faults vs {c['claims_per_s']} "
                f"without ({figures['claims_per_s_ratio']}x); adjudicated twice "
                f"{f['adjudicated_twice']}/{c['adjudicated_twice']}; exactly once "
                f"{f['exactly_once']}/{c['exactly_once']}")  # fmt: skip
    if name == "rabbitmq":
        parts = []
        for broker in ("rabbitmq", "rabbitmq_at_receipt", "redis_broker"):
            g = figures.get(broker, {})
            if "finished_after_kill_s" not in g:
                parts.append(f"{broker}: not started ({g.get('reason', '')[:200]})")
                continue
            parts.append(f"{broker}: exit {g['run_exit']}, finished {g['finished_after_kill_s']} s "
                         f"after the kill, wall {g['wall_s']} s, exactly once {g['exactly_once']}, "
                         f"adjudicated twice {g['adjudicated_twice']}")  # fmt: skip
        return "rabbitmq: " + "; ".join(parts)
    if name.startswith("survive"):
        g = figures
        line = ("" if g.get("all_kills_mid_run") else "VOID (the run outran the kills) ") + (
                f"{name}: run exit {g['run_exit']}, wall {g['wall_s']} s, {g['claims_per_s']} "
                f"claims/s, exactly once {g['exactly_once']} ({g['claims']} rows, "
                f"{g['duplicates']} duplicates, {g['missing']} missing), adjudicated twice "
                f"{g['adjudicated_twice']}, 99s {g['rejected_99']}, kills {g['worker_kills']} "
                f"workers + {g['redis_kills']} Redis, restarts {g['restarts']} "
                f"({g['unplanned_restarts']} unplanned), finished {g['last_kill_to_finish_s']} s "
                f"after the last kill")  # fmt: skip
        if name == "survive-empty":
            line += (f"; resume exit {g['resume_exit']} in {g['resume_s']} s, "
                     f"{g['re_enqueued']} claims re-enqueued")  # fmt: skip
        return line
    return f"{name}: {json.dumps(figures)[:300]}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", type=int, default=10_000)
    parser.add_argument("--scenario", nargs="+", choices=[*SCENARIOS, "all", *LONG],
                        default=["all"])  # fmt: skip
    parser.add_argument("--seed", type=int, default=10, help="where the kills fall (survive)")
    parser.add_argument(
        "--empty-timeout",
        type=int,
        default=300,
        help="survive-empty: the run's --timeout (longer than --kill-window)",
    )
    parser.add_argument(
        "--kill-window",
        type=float,
        default=40.0,
        help="survive: the kills fall in the first this many seconds of the run "
        "(under the run's length without kills: see faults20's claims/s)",
    )
    parser.add_argument("--suffix", default="", help="figures under NAME+SUFFIX (a second sample)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    for name in args.scenario:
        names += list(SCENARIOS) if name == "all" else [name]
    figures_path = OUT / "chaos.json"
    results = json.loads(figures_path.read_text()) if figures_path.exists() else {}
    for name in names:
        key = name + args.suffix
        if name in LONG:
            results[key] = LONG[name](args)
        else:
            claims = OUT / f"chaos-{args.claims}.jsonl"
            write_claims(claims, args.claims)
            results[key] = run_scenario(name, claims, args.claims)
        print(key, json.dumps(results[key], indent=1), flush=True)
        figures_path.write_text(json.dumps(results, indent=1))
    print("\nsummary")
    for name in names:
        print(" ", summary(name, results[name + args.suffix]))


if __name__ == "__main__":
    main()
