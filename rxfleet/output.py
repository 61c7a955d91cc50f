"""Results files: ``.jsonl``, ``.csv`` or ``.parquet``, chosen by extension.

One row per input claim, in input order, with the fields of docs/results.md.
In CSV, list fields (``errors``, ``reject_codes``) are joined with ``;``. Amounts
(``amount_paid``, ``patient_pay``) are JSON numbers in JSON Lines, text to the cent
in CSV and ``decimal(8, 2)`` in Parquet.

Exports hold claim ids, patient tokens, NDCs, dates and amounts: every file the
CLI writes (results, ``rxfleet audit -o``) is created with ``RXFLEET_EXPORT_MODE``
(default ``600``: its owner only), whatever the umask.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from config import get_settings
from rxfleet.claims.fields import LIST_FIELDS, MONEY_FIELDS, RESULT_FIELDS
from rxfleet.errors import ConfigError

SUFFIXES = (".jsonl", ".csv", ".parquet")
#: ``-o -``: JSON lines on standard output.
STDOUT = "-"


def check_output(path: str) -> None:
    """Refuse an output path whose format is unknown, before anything is enqueued."""
    if path != STDOUT and Path(path).suffix.lower() not in SUFFIXES:
        raise ConfigError(f"{path}: output must end in .jsonl, .csv or .parquet, or be - "
                          "(JSON lines on stdout)")  # fmt: skip


def write_results(path: str, rows: Iterable[dict[str, Any]]) -> int:
    """Write ``rows`` to ``path`` (atomically: a temp file renamed; ``-``: JSON lines on
    stdout); rows written."""
    check_output(path)
    if path == STDOUT:
        return _jsonl_to(sys.stdout, rows)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp")
    writer = {".jsonl": _jsonl, ".csv": _csv, ".parquet": _parquet}[target.suffix.lower()]
    create_private(tmp)
    count = writer(tmp, rows)
    tmp.replace(target)
    return count


def create_private(path: Path, mode: int | None = None) -> None:
    """Create ``path`` empty with exactly ``mode`` (default: ``RXFLEET_EXPORT_MODE``),
    whatever the umask; a stale file there is replaced. Writers then open it ``"w"``
    (the mode stays)."""
    mode = get_settings().export_permissions() if mode is None else mode
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    with path.open("w", encoding="utf-8") as handle:
        return _jsonl_to(handle, rows)


def _jsonl_to(handle: TextIO, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    for row in rows:
        handle.write(json.dumps(_shaped(row, _number)) + "\n")
        count += 1
    handle.flush()
    return count


def _csv(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=RESULT_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(k, row.get(k)) for k in RESULT_FIELDS})
            count += 1
    return count


def _shaped(row: dict[str, Any], money: Callable[[Any], Any]) -> dict[str, Any]:
    """The row's result fields, in order, its amounts through ``money``."""
    shaped = {k: row.get(k) for k in RESULT_FIELDS}
    for name in MONEY_FIELDS:
        shaped[name] = money(shaped[name])
    return shaped


def _number(value: Any) -> float | None:
    """An amount as a JSON number (a Decimal to the cent prints exactly)."""
    return None if value is None else float(value)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


def _cell(name: str, value: Any) -> Any:
    if name in LIST_FIELDS:
        return ";".join(value or [])
    return "" if value is None else value


def _parquet(path: Path, rows: Iterable[dict[str, Any]], chunk: int = 50_000) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("claim_id", pa.string()),
            ("status", pa.string()),
            ("severity", pa.string()),
            ("errors", pa.list_(pa.string())),
            ("ndc11", pa.string()),
            ("gpi", pa.string()),
            ("reject_codes", pa.list_(pa.string())),
            ("route", pa.string()),
            ("patient_token", pa.string()),
            ("attempts", pa.int32()),
            ("transaction_code", pa.string()),
            ("reason", pa.string()),
            ("amount_paid", pa.decimal128(8, 2)),
            ("patient_pay", pa.decimal128(8, 2)),
            ("authorization_number", pa.string()),
            ("source", pa.string()),
        ]
    )
    count = 0
    with pq.ParquetWriter(str(path), schema) as writer:
        for block in _blocks(rows, chunk):
            writer.write_table(pa.Table.from_pylist(block, schema=schema))
            count += len(block)
    return count


def _blocks(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    block: list[dict[str, Any]] = []
    for row in rows:
        block.append(_shaped(row, _decimal))
        if len(block) == size:
            yield block
            block = []
    if block:
        yield block
