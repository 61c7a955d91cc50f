"""Parse + validate throughput per input format, and peak RSS flat with file size.

Run from the repository root::

    python -m bench.parse_bench --claims 1000000

For each format (JSONL, CSV, Parquet, NCPDP D.0, X12 837P) and each size (the
``--small`` size and ``--claims``), a fresh subprocess streams the generated file
through what the producer and the validate link do to every record:
``read_claims`` → ``check_phi`` → ``split_phi`` → ``validate`` (on the non-PHI
fields), and reports records/s and its own peak RSS (``ru_maxrss`` and
``VmHWM``). One process per figure keeps each RSS clean of the others. A last
subprocess per size runs the real producer step, ``rxfleet.links.ingest.Ingest``
(PHI check, keyed token, AES-GCM vault seal, throwaway keys), over the JSONL
file and drops its output (no Redis). A baseline process (imports only) shows
what the interpreter and libraries cost before the first record.

Inputs are generated with ``bench/gen_inputs.py`` when missing. Figures are
printed as a table and written to ``<out>/parse_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet", "ncpdp", "837")
TODAY = date(2026, 11, 20)  # the synthetic claims' "today" (rxfleet.claims.synth.TODAY)


# --- measuring, inside the child process ---------------------------------------------


def _vm_hwm_kib() -> int | None:
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return None


def _peak_rss_kib() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # Linux: KiB; macOS: bytes


def _memory() -> dict[str, int | None]:
    return {"ru_maxrss_kib": _peak_rss_kib(), "vmhwm_kib": _vm_hwm_kib()}


def _parse_validate(path: str) -> dict[str, Any]:
    """read → check_phi → split_phi → validate, as the producer and validate link do.

    With no ``path``: the imports only (the baseline of this mode).
    """
    import pyarrow.parquet  # noqa: F401  (every format's reader loaded: the same baseline)

    import rxfleet.formats.ncpdp
    import rxfleet.formats.x12  # noqa: F401
    from rxfleet.claims.validation import check_phi, split_phi, validate
    from rxfleet.formats import detect_format, reader_for

    if not path:
        return {"records": 0, "seconds": 0.0, **_memory()}
    fmt = detect_format(path)

    severities: Counter[str] = Counter()
    records = problems = 0
    started = time.perf_counter()
    for record in reader_for(fmt)(path):
        records += 1
        phi_issues = check_phi(record.fields, today=TODAY)
        if record.problem is not None:
            problems += 1
            continue
        rest, _phi = split_phi(record.fields)
        outcome = validate(rest, today=TODAY, fmt=fmt.value)
        severities[outcome.severity if not phi_issues else "FATAL"] += 1
    seconds = time.perf_counter() - started
    return {
        "records": records,
        "seconds": seconds,
        "reader_problems": problems,
        "severities": dict(severities),
        **_memory(),
    }


def _producer(path: str) -> dict[str, Any]:
    """The producer's per-record step (Ingest) over a file, output dropped.

    With no ``path``: the imports only (the baseline of this mode).
    """
    import pyarrow.parquet  # noqa: F401

    import rxfleet.formats.ncpdp
    import rxfleet.formats.x12  # noqa: F401
    from rxfleet.claims.phi import PhiTokenizer, VaultCipher
    from rxfleet.formats import read_claims
    from rxfleet.links.ingest import Ingest

    if not path:
        return {"records": 0, "seconds": 0.0, **_memory()}

    ingest = Ingest("bench-run", PhiTokenizer(os.urandom(32)), VaultCipher(os.urandom(32)))
    records = sealed = 0
    started = time.perf_counter()
    for seq, record in enumerate(read_claims(path)):
        work, blob = ingest(record, seq)
        records += 1
        sealed += blob is not None
        del work, blob
    seconds = time.perf_counter() - started
    return {"records": records, "seconds": seconds, "sealed": sealed, **_memory()}


def _child(mode: str, path: str) -> dict[str, Any]:
    if mode == "parse":
        return _parse_validate(path)
    if mode == "producer":
        return _producer(path)
    raise SystemExit(f"unknown mode {mode}")


# --- orchestrating, in the parent -------------------------------------------------------


def _run_child(mode: str, path: Path | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.parse_bench", "--child", mode]
    if path is not None:
        command += ["--path", str(path)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=_ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = result["seconds"]
    result["records_per_s"] = round(result["records"] / seconds) if seconds else None
    return result


def _ensure_inputs(n: int, out: Path) -> None:
    from bench.gen_inputs import FORMATS as GEN_FORMATS
    from bench.gen_inputs import generate, path_for

    missing = [fmt for fmt in GEN_FORMATS if not path_for(out, n, fmt).is_file()]
    if missing:
        print(f"generating {n} claims as {', '.join(missing)} in {out} ...", file=sys.stderr)
        started = time.perf_counter()
        generate(n, out, missing)
        print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _mib(kib: int | None) -> str:
    return "-" if kib is None else f"{kib / 1024:.0f}"


def _peak(figure: dict[str, Any]) -> int | None:
    """VmHWM when there is one: ``ru_maxrss`` survives exec, so a child's may still hold
    the parent's peak at fork time; VmHWM belongs to the new process image only."""
    hwm: int | None = figure["vmhwm_kib"]
    return hwm if hwm is not None else figure["ru_maxrss_kib"]


def _rate(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _table(figures: dict[str, Any], sizes: list[int]) -> str:
    small, large = sizes
    head = (
        f"{'format':<10}{'recs/s @' + str(small):>16}{'recs/s @' + str(large):>16}"
        f"{'peak RSS MiB @' + str(small):>22}{'peak RSS MiB @' + str(large):>22}"
    )
    lines = [head, "-" * len(head)]
    rows = [(fmt, figures["parse_validate"][fmt]) for fmt in FORMATS]
    rows.append(("producer", figures["producer_jsonl"]))
    for name, by_size in rows:
        a, b = by_size[str(small)], by_size[str(large)]
        lines.append(
            f"{name:<10}{_rate(a['records_per_s']):>16}{_rate(b['records_per_s']):>16}"
            f"{_mib(_peak(a)):>22}{_mib(_peak(b)):>22}"
        )
    base = figures["baseline"]
    lines.append(
        "baseline, imports only (no record read): "
        f"parse+validate {_mib(_peak(base['parse_validate']))} MiB, "
        f"producer {_mib(_peak(base['producer']))} MiB"
    )
    return "\n".join(lines)


def run(claims: int, small: int, out: Path) -> dict[str, Any]:
    sizes = sorted({small, claims})
    if len(sizes) != 2:
        raise SystemExit("--small must differ from --claims")
    for n in sizes:
        _ensure_inputs(n, out)
    from bench.gen_inputs import path_for

    figures: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "today": TODAY.isoformat(),
        "baseline": {
            "parse_validate": _run_child("parse", None),
            "producer": _run_child("producer", None),
        },
        "parse_validate": {},
        "producer_jsonl": {},
    }
    for fmt in FORMATS:
        figures["parse_validate"][fmt] = {}
        for n in sizes:
            print(f"parse+validate {fmt} x {n} ...", file=sys.stderr, flush=True)
            figures["parse_validate"][fmt][str(n)] = _run_child("parse", path_for(out, n, fmt))
    for n in sizes:
        print(f"producer Ingest jsonl x {n} ...", file=sys.stderr, flush=True)
        figures["producer_jsonl"][str(n)] = _run_child("producer", path_for(out, n, "jsonl"))
    figures["table"] = _table(figures, sizes)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=1_000_000, help="the large size")
    parser.add_argument("--small", type=int, default=100_000, help="the small size")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "out")
    parser.add_argument("--child", choices=("parse", "producer"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.path or "")))
        return 0
    figures = run(args.claims, args.small, args.out)
    print(figures["table"])
    target = args.out / "parse_bench.json"
    target.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"figures written to {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
