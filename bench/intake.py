"""Intake rate: a large JSONL file shipped as slices by the producer, then ingested by
1, 2, 4 processes running the intake link, no gateway in the way.

    python -m bench.intake [--claims 1000000] [--procs 1,2,4] [--batch-size 500]
        [--out bench/out/intake.json]

One private Redis server and one private PostgreSQL serve every row. The file (N
synthetic payable claims, ``rxfleet.claims.synth``) is written once. For each row
Redis is emptied, a fresh run opened, and:

* the producer (``rxfleet.producer.Producer``, slices on, the window wide enough for
  the whole file) cuts the file and ships every sealed slice; its claims/s and CPU a
  claim are its own figures (the chains are counted, not sent: no Celery here);
* then k processes (spawned, each with its own connections) take the batches in input
  order from one queue, as cpu workers take them from the broker, and run the intake
  link as its task does (``intake_batch`` with the plans' limits: open the slice,
  parse, check, tokenize, seal the PHI, validate, the duplicate-id check and the
  claim-id order in turn, records written); claims
  admitted a second is N / the wall time from the first take to the last admission,
  and each process's CPU a claim is reported.

It checks that every claim was admitted once (the run's records in Redis = N). Nothing
here needs a network: it runs unchanged on a bigger machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from bench.harness import PHI_KEY, ROOT, VAULT_KEY
from config import configure, get_settings
from rxfleet import context
from rxfleet.claims import synth
from rxfleet.claims.plans import load_plan_limits
from rxfleet.embedded.postgres_server import LocalPostgres
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.formats.payer_sheet import load_payer_sheet
from rxfleet.formats.x12 import load_payer_routes
from rxfleet.lifecycle import open_run
from rxfleet.links.intake import intake_batch
from rxfleet.links.validate import Checks
from rxfleet.producer import Producer

OUT = ROOT / "bench" / "out"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--claims", type=int, default=1_000_000)
    parser.add_argument("--procs", default="1,2,4")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--out", type=Path, default=OUT / "intake.json")
    return parser.parse_args()


def settings_for(redis_url: str, database_url: str, n: int) -> dict[str, Any]:
    return {
        "redis_url": redis_url, "database_url": database_url, "phi_key": SecretStr(PHI_KEY),
        "vault_key": SecretStr(VAULT_KEY), "max_inflight": n + 1, "intake_slices": True,
    }  # fmt: skip


def ship(path: Path, batch_size: int) -> tuple[str, list[int], dict[str, float]]:
    """A fresh run of ``path`` shipped as slices: (run id, the batches' firsts, figures)."""
    settings = get_settings()
    plan = open_run(context.runs(), context.database(), context.crosswalk(), settings,
                    [str(path)], batch_size, new=True)  # fmt: skip
    firsts: list[int] = []
    holder = f"bench-{plan.run_id}"
    assert context.runs().claim_producer(plan.run_id, holder, 600)
    producer = Producer(
        runs=context.runs(), db=context.database(), ingest=context.ingest(plan.run_id),
        send=lambda run_id, first, count: firsts.append(first),
        payer_routes=load_payer_routes(settings.payer_routes),
        payer_sheet=load_payer_sheet(settings.payer_sheet), batch_size=batch_size,
        max_inflight=settings.max_inflight, holder=holder, lease=600, slices=True,
        order=context.order(),
    )  # fmt: skip
    started, cpu = time.monotonic(), time.process_time()
    total = producer.produce([str(path)]).total
    seconds, cpu = time.monotonic() - started, time.process_time() - cpu
    return plan.run_id, firsts, {
        "producer_claims_per_s": round(total / seconds), "producer_seconds": round(seconds, 2),
        "producer_cpu_ms_per_claim": round(1000 * cpu / total, 4),
    }  # fmt: skip


def intake_worker(overrides: dict[str, Any], run_id: str, todo: Any, done: Any) -> None:
    """One intake process: batches from ``todo`` in order until it is empty."""
    configure(**overrides)
    runs, ingest, order = context.runs(), context.ingest(run_id), context.order()
    checks = Checks(limits=load_plan_limits(get_settings().plan_limits), metrics=context.metrics())
    cpu, admitted = time.process_time(), 0
    while (first := todo.get()) is not None:
        admitted += intake_batch(runs, ingest, order, first, checks=checks, turn_wait=600).ingested
    done.put((admitted, time.process_time() - cpu, time.monotonic()))


def one_row(
    k: int, path: Path, n: int, args: argparse.Namespace, overrides: dict[str, Any]
) -> dict[str, Any]:
    context.runs().client.flushall()
    run_id, firsts, figures = ship(path, args.batch_size)
    spawn = mp.get_context("spawn")
    todo, done = spawn.Queue(), spawn.Queue()
    for first in [*firsts, *[None] * k]:
        todo.put(first)
    procs = [
        spawn.Process(target=intake_worker, args=(overrides, run_id, todo, done)) for _ in range(k)
    ]
    started = time.monotonic()
    for proc in procs:
        proc.start()
    reports = [done.get() for _ in procs]
    seconds = max(at for _, _, at in reports) - started
    for proc in procs:
        proc.join()
    admitted = sum(a for a, _, _ in reports)
    held = int(context.runs().client.hlen(f"{get_settings().key_prefix}:run:{run_id}:work"))
    return {
        "intake_processes": k, "claims": n, "admitted": admitted, "records_in_redis": held,
        "admitted_once": admitted == n == held, "intake_seconds": round(seconds, 2),
        "intake_claims_per_s": round(n / seconds),
        "intake_cpu_ms_per_claim": round(1000 * sum(c for _, c, _ in reports) / n, 4),
        **figures,
    }  # fmt: skip


def main() -> None:
    args = parse_args()
    procs = [int(p) for p in args.procs.split(",") if p.strip()]
    with tempfile.TemporaryDirectory(prefix="rxfleet-intake-") as tmp:
        path = Path(tmp) / "claims.jsonl"
        synth.write_claims(path, args.claims, seed=2026, claim_id=lambda i: f"IN{i:09d}")
        redis_server, database = LocalRedis().start(), LocalPostgres().start()
        try:
            overrides = settings_for(redis_server.url, database.url, args.claims)
            configure(**overrides)
            rows = []
            for k in procs:
                rows.append(one_row(k, path, args.claims, args, overrides))
                print(_line(rows[-1]), flush=True)
        finally:
            context.forget()
            database.stop()
            redis_server.stop()
    base = rows[0]["intake_claims_per_s"]
    for row in rows:
        row["x_one_process"] = round(row["intake_claims_per_s"] / base, 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.out}")


def _line(r: dict[str, Any]) -> str:
    return (f"{r['intake_processes']} intake procs: {r['intake_claims_per_s']:>7} claims/s "
            f"({r['intake_cpu_ms_per_claim']:.3f} ms CPU a claim), once {r['admitted_once']}; "
            f"producer {r['producer_claims_per_s']:>7} claims/s "
            f"({r['producer_cpu_ms_per_claim']:.4f} ms CPU a claim)")  # fmt: skip


if __name__ == "__main__":
    main()
