"""Parquet: columns of canonical field names, read record batch by record batch.

What can go wrong inside a readable file, and what becomes of it:

* a value that cannot be turned into Python (a date beyond year 9999:
  OverflowError; a string column holding invalid UTF-8: UnicodeDecodeError) spoils
  its row only: the batch is converted row by row and the row is a record
  quarantined ``MALFORMED_RECORD`` (message names the column, never the value);
* a float32 (or float16) column is read at its own precision: each value is the
  shortest decimal that round-trips at that precision (10.10 stored as float32
  reads 10.1, not 10.100000381469727, which validation would refuse as too precise);
* a row group that cannot be decoded at all (a corrupt data page under an intact
  footer: OSError / ArrowInvalid) leaves the rows after the last good one unknown:
  the reader raises :class:`~rxfleet.errors.InputCutShort` carrying the number of
  the last row read, so the producer stops cleanly, naming file and position.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from typing import Any

from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.errors import InputCutShort, InputError
from rxfleet.formats.base import Problem, Record
from rxfleet.formats.textio import EMPTY_FILE

BATCH_ROWS = 8192
_ROW_ERRORS = (OverflowError, UnicodeDecodeError, ValueError, OSError)


def read_parquet(path: str) -> Iterator[Record]:
    """One Record per row, reading only the canonical columns, in record batches."""
    parquet = _open(path)
    wanted = [name for name in parquet.schema_arrow.names if name in CANONICAL_FIELDS]
    if "claim_id" not in wanted:
        raise InputError(path, "no claim_id column")
    extra = [name for name in parquet.schema_arrow.names if name not in CANONICAL_FIELDS]
    if extra:
        raise InputError(path, f"unknown columns: {', '.join(extra)}")
    narrow = _narrow_floats(parquet.schema_arrow, wanted)
    read = [0]  # rows read so far: the last good position if a row group fails
    for batch in _batches(path, parquet, wanted, read):
        for row in _rows(batch, wanted):
            read[0] += 1
            yield _record(path, read[0], row, narrow)
    if read[0] == 0:
        raise InputError(path, EMPTY_FILE)


def _batches(path: str, parquet: Any, wanted: list[str], position: list[int]) -> Iterator[Any]:
    """Record batches, one row group at a time: a row group that cannot be decoded
    stops the reading there, and every row before it has been read."""
    for group in range(parquet.num_row_groups):
        batches = parquet.iter_batches(batch_size=BATCH_ROWS, columns=wanted, row_groups=[group])
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception as exc:  # OSError, ArrowInvalid, ...: the rest cannot be read
                reason = f"a row group cannot be decoded ({exc.__class__.__name__})"
                raise InputCutShort(path, reason, position[0]) from None
            yield batch


def _rows(batch: Any, wanted: list[str]) -> Iterator[dict[str, Any] | str]:
    """Each row as a dict, or the name of the column that could not be converted."""
    try:
        yield from batch.to_pylist()
        return
    except _ROW_ERRORS:
        pass
    columns = {name: batch.column(name) for name in wanted}
    for index in range(batch.num_rows):
        row: dict[str, Any] = {}
        bad: str | None = None
        for name, column in columns.items():
            try:
                row[name] = column[index].as_py()
            except _ROW_ERRORS:
                bad = bad or name
        yield row if bad is None else bad + "\x00" + str(row.get("claim_id") or "")


def _narrow_floats(schema: Any, wanted: list[str]) -> dict[str, str]:
    """The float columns narrower than a Python float, each with its ``struct`` format
    (``f`` float32, ``e`` float16): their values are read at their own precision."""
    import pyarrow as pa

    kinds = {}
    for name in wanted:
        kind = schema.field(name).type
        if pa.types.is_float32(kind):
            kinds[name] = "f"
        elif pa.types.is_float16(kind):
            kinds[name] = "e"
    return kinds


def at_precision(value: float, kind: str) -> float:
    """``value`` of a narrow float column (``struct`` format ``kind``) as the shortest
    decimal that round-trips at that precision: 10.10 stored as float32 reads 10.1,
    not 10.100000381469727."""
    if not math.isfinite(value):
        return value
    stored = struct.pack(kind, value)
    for digits in range(1, 18):
        shortest = float(f"{value:.{digits}g}")
        if _packed(kind, shortest) == stored:
            return shortest
    return value


def _packed(kind: str, value: float) -> bytes | None:
    try:
        return struct.pack(kind, value)
    except OverflowError:  # rounded past the type's largest value: not this one
        return None


def _record(
    path: str, number: int, row: dict[str, Any] | str, narrow: dict[str, Any] | None = None
) -> Record:
    if isinstance(row, str):
        column, _, claim_id = row.partition("\x00")
        fields = {"claim_id": claim_id} if claim_id else {}
        message = f"column {column}: the value cannot be read (out of range or not UTF-8)"
        return Record(path, number, fields, Problem("MALFORMED_RECORD", message, column))
    read = _fields(row)
    for name, kind in (narrow or {}).items():
        value = read.get(name)
        if isinstance(value, float):
            read[name] = at_precision(value, kind)
    return Record(path, number, read)


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
