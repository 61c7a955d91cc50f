"""Fuzz every reader: N mutated inputs each, through what the fleet does to a record.

Run from the repository root::

    python -m bench.fuzz --n 100000 --seconds 120

For each format (JSONL, CSV, Parquet, NCPDP D.0, X12 837P) a valid seed file is
mutated (byte flips, format tokens inserted, lines duplicated or cut, bytes that
are not UTF-8, deep nesting, long numbers, lone surrogates) and each mutant goes
through the reader -> ``check_phi`` -> ``split_phi`` -> ``validate`` -> the
gateway body (``Claim.gateway_fields()`` must be JSON-encodable). Counted:

* crashes: any exception outside the project's error tree (``RxFleetError``);
* the slowest single input (a quadratic path or a huge number shows here: the
  first run found ``int(Decimal("1e999999"))`` in validation, 30 s a claim);
* lost records, where countable: JSON Lines and CSV (one record per non-blank
  line), NCPDP (at least one record per non-blank line).

Each format stops at ``--n`` inputs or ``--seconds``, whichever comes first. The
figures are printed; the exit status is 1 when anything crashed or was lost.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from rxfleet.claims.validation import check_phi, split_phi, validate
from rxfleet.errors import RxFleetError
from rxfleet.formats import Format, reader_for
from tests.unit.formats import ncpdp_build as b

ROOT = Path(__file__).resolve().parents[1]

ROUTES = {"PLANID12345": {"bin": "610014", "pcn": "RXSANDBX", "group_id": "G", "plan_id": "P"}}
TODAY = date(2026, 11, 20)
_ROW = {
    "claim_id": "RX1", "bin": "610014", "pcn": "RXSANDBX", "cardholder_id": "ZH1",
    "date_of_service": "2026-11-01", "ndc": "0071-0155-23", "quantity_dispensed": "30",
    "days_supply": "30", "plan_id": "PLAN-COMM", "date_of_birth": "1980-02-25",
}  # fmt: skip


def _seed(fmt: Format) -> bytes:
    if fmt is Format.JSONL:
        lines = [json.dumps({**_ROW, "claim_id": f"RX{i}"}) for i in range(4)]
        return ("\n".join(lines) + "\n").encode()
    if fmt is Format.CSV:
        head = ",".join(_ROW)
        rows = [",".join({**_ROW, "claim_id": f"RX{i}"}.values()) for i in range(4)]
        return ("\n".join([head, *rows]) + "\n").encode()
    if fmt is Format.NCPDP:
        return (b.transmission(2) + "\n" + b.transmission(1) + "\n").encode()
    if fmt is Format.X12:
        path = ROOT / "tests/resources/x12/837_005010X222A2/demo.drug.example10.2.837"
        return path.read_bytes()
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    records = [{**_ROW, "claim_id": f"RX{i}"} for i in range(20)]
    pq.write_table(pa.Table.from_pylist(records), sink, row_group_size=5)
    return sink.getvalue()


_TOKENS: dict[Format, list[bytes]] = {
    Format.JSONL: [b"{", b"}", b"[" * 1200, b'"\\ud800"', b"9" * 5000, b'"', b",", b"\n",
                   b"\xff", b"\xc3", b"null", b'"claim_id":', b"1e999999"],
    Format.CSV: [b'"', b",", b"\n", b"\r\n", b"\xff", b"claim_id", b'""', b"\x00"],
    Format.NCPDP: [b"\x1e", b"\x1d", b"\x1c", b"AM07", b"AM01", b"E7", b"D7", b"E1",
                   b"\n", b"\xff", b"{", b"}", b"0" * 60],
    Format.X12: [b"~", b"*", b":", b"\n", b"LX*1~", b"LIN**N4*00026063512~", b"LIN**UP*1~",
                 b"CTP****10*ME~", b"CLM*X*1~", b"HL*1**22~", b"SE*1*1~", b"GE*9*9~",
                 b"IEA*1*1~", b"\xff", b"ST*837*1~", b"SBR*P*18*G1~"],
    Format.PARQUET: [b"\x00", b"\xff", b"PAR1", b"\x15\x00"],
}  # fmt: skip


def mutate(seed: bytes, tokens: list[bytes], rng: random.Random) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        at = rng.randrange(len(data) + 1) if data else 0
        if op == 0 and data:  # flip a byte
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif op == 1:  # insert a format token
            data[at:at] = rng.choice(tokens)
        elif op == 2 and data:  # cut
            del data[at : at + rng.randint(1, 40)]
        elif op == 3 and data:  # duplicate a stretch
            data[at:at] = data[at : at + rng.randint(1, 200)]
        elif op == 4:  # truncate
            del data[at:]
        else:  # replace a stretch with a token
            data[at : at + rng.randint(1, 8)] = rng.choice(tokens)
    return bytes(data)


def _expected(fmt: Format, data: bytes) -> tuple[str, int] | None:
    """(comparison, count) of records for formats where it is countable."""
    if fmt is Format.JSONL:  # CR, LF and CRLF each end a line
        return ("==", len([line for line in re.split(rb"\r\n|\r|\n", data) if line.strip()]))
    if fmt is Format.NCPDP:
        return (">=", len([line for line in data.split(b"\n") if line.strip(b" \t\r")]))
    return None


@dataclass
class Figures:
    inputs: int = 0
    records: int = 0
    input_errors: int = 0
    quarantined_at_read: int = 0
    crashes: int = 0
    lost: int = 0
    seconds: float = 0.0
    slowest: float = 0.0  # seconds of the slowest single input (a DoS shows here)
    first_crash: list[str] = field(default_factory=list)


def _through_the_fleet(fmt: Format, fields: dict[str, object]) -> None:
    check_phi(fields, today=TODAY)
    rest, _phi = split_phi(fields)
    outcome = validate(rest, today=TODAY, fmt=fmt.value)
    if outcome.claim is not None:
        json.dumps(outcome.claim.gateway_fields())


def fuzz_format(fmt: Format, n: int, seconds: float, seed: int = 11) -> Figures:
    rng = random.Random(seed)
    figures = Figures()
    reader: Callable[[str], object] = reader_for(fmt, ROUTES)
    base, tokens = _seed(fmt), _TOKENS[fmt]
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input.{fmt.value}"
        while figures.inputs < n and time.monotonic() - start < seconds:
            data = mutate(base, tokens, rng)
            path.write_bytes(data)
            figures.inputs += 1
            count = 0
            began = time.monotonic()
            try:
                for record in reader(str(path)):  # type: ignore[attr-defined]
                    count += 1
                    if record.problem is not None:
                        figures.quarantined_at_read += 1
                    _through_the_fleet(fmt, record.fields)
            except RxFleetError:
                figures.input_errors += 1
                figures.records += count
                continue
            except Exception:
                figures.crashes += 1
                if not figures.first_crash:
                    figures.first_crash = traceback.format_exc().splitlines()[-6:]
                continue
            figures.records += count
            figures.slowest = max(figures.slowest, time.monotonic() - began)
            expected = _expected(fmt, data)
            if expected is not None:
                op, want = expected
                if (op == "==" and count != want) or (op == ">=" and count < want):
                    figures.lost += 1
    figures.seconds = time.monotonic() - start
    return figures


# --- Issue 16 shapes: each a generator of (format, file bytes, records expected) ------

_CONTROLS = [chr(c) for c in range(0x20) if c != 0x09] + ["\x7f"]


def edge_control_characters(rng: random.Random) -> tuple[Format, bytes, int]:
    """JSON Lines whose text fields (claim_id too) hold NUL, DEL or C0 controls."""
    rows = []
    for i in range(rng.randint(1, 6)):
        row = {**_ROW, "claim_id": f"RX{i}"}
        name = rng.choice(list(row))
        row[name] = str(row[name]) + rng.choice(_CONTROLS) + "X"
        rows.append(json.dumps(row))
    return Format.JSONL, ("\n".join(rows) + "\n").encode(), len(rows)


def edge_misaligned_csv(rng: random.Random) -> tuple[Format, bytes, int]:
    """CSV records with an unquoted comma in a value, or cells dropped or added."""
    head = ",".join(_ROW)
    rows = []
    for i in range(rng.randint(1, 8)):
        cells = list({**_ROW, "claim_id": f"RX{i}"}.values())
        shape = rng.randrange(4)
        if shape == 1:
            cells[rng.randrange(len(cells))] += ", JR"
        elif shape == 2:
            del cells[rng.randrange(len(cells))]
        elif shape == 3:
            cells.insert(rng.randrange(len(cells)), "GARCIA")
        rows.append(",".join(cells))
    return Format.CSV, ("\n".join([head, *rows]) + "\n").encode(), len(rows)


def edge_line_ends(rng: random.Random) -> tuple[Format, bytes, int]:
    """JSON Lines or CSV with CR, LF or CRLF line ends, mixed, and quoted CSV line ends."""
    fmt = rng.choice([Format.JSONL, Format.CSV])
    n = rng.randint(1, 6)
    ends = [rng.choice(["\r", "\n", "\r\n"]) for _ in range(n + 1)]
    if fmt is Format.JSONL:
        lines = [json.dumps({**_ROW, "claim_id": f"RX{i}"}) for i in range(n)]
        return fmt, "".join(line + end for line, end in zip(lines, ends, strict=False)).encode(), n
    rows = [",".join(_ROW)]
    for i in range(n):
        pcn = '"RX' + rng.choice(["\n", "\r\n", "\r"]) + 'BX"' if rng.random() < 0.3 else "P"
        rows.append(",".join({**_ROW, "claim_id": f"RX{i}", "pcn": pcn}.values()))
    return fmt, "".join(row + end for row, end in zip(rows, ends, strict=True)).encode(), n


def edge_float32_parquet(rng: random.Random) -> tuple[Format, bytes, int]:
    """Parquet with quantity and amounts in float32 columns (2- and 3-decimal values)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    n = rng.randint(1, 20)
    qty = [round(rng.uniform(0.001, 9999), 3) for _ in range(n)]
    cost = [round(rng.uniform(0, 99999), 2) for _ in range(n)]
    rows = [{**_ROW, "claim_id": f"RX{i}"} for i in range(n)]
    table = pa.Table.from_pylist(rows).drop_columns(["quantity_dispensed"])
    table = table.append_column("quantity_dispensed", pa.array(qty, type=pa.float32()))
    table = table.append_column("ingredient_cost_submitted", pa.array(cost, type=pa.float32()))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return Format.PARQUET, sink.getvalue(), n


EDGE_SHAPES: dict[str, Callable[[random.Random], tuple[Format, bytes, int]]] = {
    "control": edge_control_characters,
    "misalign": edge_misaligned_csv,
    "lineends": edge_line_ends,
    "float32": edge_float32_parquet,
}
#: Codes a float32 column must never earn (its values are read at float32 precision).
_FLOAT32_WRONG = {"QUANTITY_TOO_PRECISE", "INVALID_AMOUNT"}


def fuzz_edges(shape: str, n: int, seconds: float, seed: int = 13) -> Figures:
    """``n`` generated files of one issue-16 shape: exactly the records expected, none
    crashing, and (float32) no claim refused for a precision its file never had."""
    rng, figures, make = random.Random(seed), Figures(), EDGE_SHAPES[shape]
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        while figures.inputs < n and time.monotonic() - start < seconds:
            fmt, data, want = make(rng)
            path = Path(tmp) / f"input.{fmt.value}"
            path.write_bytes(data)
            figures.inputs += 1
            try:
                records = list(reader_for(fmt, ROUTES)(str(path)))
                for record in records:
                    figures.quarantined_at_read += record.problem is not None
                    _edge_checked(shape, fmt, record.fields)
            except Exception:
                figures.crashes += 1
                if not figures.first_crash:
                    figures.first_crash = traceback.format_exc().splitlines()[-6:]
                continue
            figures.records += len(records)
            figures.lost += len(records) != want
    figures.seconds = time.monotonic() - start
    return figures


def _edge_checked(shape: str, fmt: Format, fields: dict[str, object]) -> None:
    _through_the_fleet(fmt, fields)
    if shape == "float32":
        rest, _phi = split_phi(fields)
        codes = {i.code for i in validate(rest, today=TODAY, fmt=fmt.value).issues}
        if codes & _FLOAT32_WRONG:
            raise AssertionError(f"float32 value refused: {sorted(codes & _FLOAT32_WRONG)}")


def run(n: int, seconds: float) -> dict[str, Figures]:
    found = {fmt.value: fuzz_format(fmt, n, seconds) for fmt in Format}
    found.update({f"edge:{s}": fuzz_edges(s, n, seconds) for s in EDGE_SHAPES})
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="inputs per reader")
    parser.add_argument("--seconds", type=float, default=120.0, help="time bound per reader")
    args = parser.parse_args()
    results = run(args.n, args.seconds)
    head = f"{'format':13} {'inputs':>8} {'records':>9} {'InputErr':>9} {'quar@read':>9} "
    print(head + f"{'crashes':>8} {'lost':>6} {'sec':>6} {'slowest':>8}")
    for name, f in results.items():
        print(
            f"{name:13} {f.inputs:8d} {f.records:9d} {f.input_errors:9d} "
            f"{f.quarantined_at_read:9d} {f.crashes:8d} {f.lost:6d} {f.seconds:6.1f} "
            f"{f.slowest:8.3f}"
        )
        for line in f.first_crash:
            print("   ", line)
    bad = sum(f.crashes + f.lost for f in results.values())
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
