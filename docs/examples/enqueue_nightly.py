"""An upstream nightly job: enqueue the night's claims files into the fleet, wait, report.

Uses only the public API (``rxfleet.api``). Run it where the fleet's settings are
set (``RXFLEET_REDIS_URL``, ``RXFLEET_DATABASE_URL``, the PHI keys: docs/settings.md)::

    python docs/examples/enqueue_nightly.py /data/inbound/2026-11-27/*.jsonl --out night.jsonl

It prints the run id, then one line per status (``PAID 700``), and exits 0 when
every claim was recorded, 1 when the fleet did not finish in ``--timeout``.
The results (``--out``, JSON Lines) are read back from the system of record.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from rxfleet import api
from rxfleet.errors import RunTimeout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="the night's claims files, in order")
    parser.add_argument("--out", default=None, help="write the results here (JSON Lines)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait")
    args = parser.parse_args(argv)

    run = api.enqueue(args.inputs)
    print(f"run {run.id}", flush=True)

    def progress(done: int, total: int | None) -> None:
        print(f"  {done} of {total if total is not None else '?'} claims", file=sys.stderr)

    try:
        run.wait(timeout=args.timeout, on_progress=progress)
    except RunTimeout as exc:
        print(f"not finished: {exc}", file=sys.stderr)
        return 1

    statuses: Counter[str] = Counter()
    out = open(args.out, "w", encoding="utf-8") if args.out else None  # noqa: SIM115
    try:
        for row in run.results():  # input order, streamed
            statuses[row["status"]] += 1
            if out is not None:
                out.write(json.dumps(row, default=float) + "\n")  # amounts: Decimal
    finally:
        if out is not None:
            out.close()
    for status, count in sorted(statuses.items()):
        print(f"{status} {count}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
