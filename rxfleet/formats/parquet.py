"""Parquet: columns of canonical field names, read record batch by record batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.errors import InputError
from rxfleet.formats.base import Record

BATCH_ROWS = 8192


def read_parquet(path: str) -> Iterator[Record]:
    """One Record per row, reading only the canonical columns, in record batches."""
    parquet = _open(path)
    wanted = [name for name in parquet.schema_arrow.names if name in CANONICAL_FIELDS]
    if "claim_id" not in wanted:
        raise InputError(path, "no claim_id column")
    extra = [name for name in parquet.schema_arrow.names if name not in CANONICAL_FIELDS]
    if extra:
        raise InputError(path, f"unknown columns: {', '.join(extra)}")
    number = 0
    for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=wanted):
        for row in batch.to_pylist():
            number += 1
            yield Record(path, number, _fields(row))


def _open(path: str) -> Any:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except OSError as exc:
        raise InputError(path, f"not a readable Parquet file ({exc.__class__.__name__})") from None
    except Exception as exc:  # pyarrow raises ArrowInvalid and friends for bad files
        raise InputError(path, f"not a readable Parquet file ({exc.__class__.__name__})") from None


def _fields(row: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in row.items() if value is not None}
