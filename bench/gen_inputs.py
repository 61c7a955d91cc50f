"""Synthetic claim files for the parse benchmark, every format, written as a stream.

Run from the repository root::

    python -m bench.gen_inputs --claims 1000000 --out bench/out

Writes ``claims_<N>.jsonl``, ``.csv``, ``.parquet``, ``.ncpdp`` (NCPDP D.0, one
B1 transmission a line) and ``.837`` (one X12 837P interchange, one subscriber
loop and one ``CLM``/``LX``/``LIN`` drug line per claim, payer ``PLANID12345``
which ``config/payer_routes.json`` routes). The claims come from
``rxfleet.claims.synth.sample_claims`` (its raw malformed lines are skipped), so the mix
of payable, warned and broken claims is the one the fleet sees in tests. One
pass over the claims feeds all five writers; memory is constant (Parquet is
written in row groups of ``PARQUET_CHUNK`` rows).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.claims.ndc import NdcError, normalize_ndc
from rxfleet.claims.synth import sample_claims
from rxfleet.formats.overpunch import encode_overpunch

FORMATS: tuple[str, ...] = ("jsonl", "csv", "parquet", "ncpdp", "837")
PARQUET_CHUNK = 50_000
PAYER_ID = "PLANID12345"
RS, GS, FS = "\x1e", "\x1d", "\x1c"


def claims(n: int, seed: int = 2026) -> Iterator[dict[str, Any]]:
    """``n`` synthetic claim dicts (the raw non-JSON lines of ``sample_claims`` skipped)."""
    items = sample_claims(2 * n + 100, seed)  # lazy: only as many as needed are made
    return itertools.islice((c for c in items if isinstance(c, dict)), n)


def path_for(out: Path, n: int, fmt: str) -> Path:
    """Where the ``fmt`` file of ``n`` claims lives under ``out``."""
    return out / f"claims_{n}.{fmt}"


# --- value helpers ---------------------------------------------------------------------


def _text(claim: dict[str, Any], name: str) -> str:
    value = claim.get(name)
    return "" if value is None else str(value)


def _ccyymmdd(value: Any) -> str:
    return str(value or "").replace("-", "")


def _ndc11(raw: str) -> str:
    """The 11 digits a billing format carries; an unnormalizable NDC as its digits."""
    try:
        return normalize_ndc(raw)
    except NdcError:
        return raw.replace("-", "")


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


# --- writers ---------------------------------------------------------------------------


class _Writer:
    def write(self, claim: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _JsonlWriter(_Writer):
    def __init__(self, path: Path) -> None:
        self.handle: IO[str] = path.open("w", encoding="utf-8")

    def write(self, claim: dict[str, Any]) -> None:
        self.handle.write(json.dumps(claim, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self.handle.close()


class _CsvWriter(_Writer):
    def __init__(self, path: Path) -> None:
        self.handle: IO[str] = path.open("w", encoding="utf-8", newline="")
        self.writer = csv.writer(self.handle)
        self.writer.writerow(CANONICAL_FIELDS)

    def write(self, claim: dict[str, Any]) -> None:
        self.writer.writerow([_text(claim, name) for name in CANONICAL_FIELDS])

    def close(self) -> None:
        self.handle.close()


class _ParquetWriter(_Writer):
    """Typed columns as an upstream system would write them; dates stay text."""

    _NUMERIC = {
        "quantity_dispensed": "float64",
        "days_supply": "int64",
        "fill_number": "int64",
        "ingredient_cost_submitted": "float64",
        "usual_and_customary": "float64",
    }

    def __init__(self, path: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa = pa
        self.schema = pa.schema(
            [(name, self._NUMERIC.get(name, "string")) for name in CANONICAL_FIELDS]
        )
        self.writer = pq.ParquetWriter(str(path), self.schema)
        self.rows: list[dict[str, Any]] = []

    def write(self, claim: dict[str, Any]) -> None:
        row = {name: claim.get(name) for name in CANONICAL_FIELDS}
        for name in CANONICAL_FIELDS:
            if name not in self._NUMERIC and row[name] is not None:
                row[name] = str(row[name])
        self.rows.append(row)
        if len(self.rows) >= PARQUET_CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.rows:
            table = self.pa.Table.from_pylist(self.rows, schema=self.schema)
            self.writer.write_table(table)
            self.rows = []

    def close(self) -> None:
        self._flush()
        self.writer.close()


class _NcpdpWriter(_Writer):
    """One B1 transmission (one transaction) a line, 56-byte header, D.0 segments."""

    def __init__(self, path: Path) -> None:
        self.handle: IO[str] = path.open("w", encoding="latin-1", newline="")

    @staticmethod
    def _segment(segment_id: str, fields: dict[str, str]) -> str:
        return RS + FS + "AM" + segment_id + "".join(FS + k + v for k, v in fields.items() if v)

    def write(self, claim: dict[str, Any]) -> None:
        header = (
            _text(claim, "bin").ljust(6)[:6]
            + "D0"
            + "B1"
            + _text(claim, "pcn").ljust(10)[:10]
            + "1"
            + "01"
            + _text(claim, "service_provider_id").ljust(15)[:15]
            + _ccyymmdd(claim.get("date_of_service")).ljust(8)[:8]
            + "SWVENDOR01"
        )
        quantity = max(_decimal(claim.get("quantity_dispensed")), Decimal(0))
        insurance = {"C2": _text(claim, "cardholder_id"), "C1": _text(claim, "group_id")}
        patient = {
            "C4": _ccyymmdd(claim.get("date_of_birth")),
            "CA": _text(claim, "patient_first_name"),
            "CB": _text(claim, "patient_last_name"),
        }
        claim_segment = {
            "EM": "1",
            "D2": _text(claim, "rx_number").rjust(12, "0"),
            "E1": "03",
            "D7": _ndc11(_text(claim, "ndc")),
            "E7": str(int(quantity.scaleb(3))).rjust(10, "0"),
            "D3": _text(claim, "fill_number").rjust(2, "0"),
            "D5": _text(claim, "days_supply").rjust(3, "0"),
        }
        prescriber = {"EZ": "01", "DB": _text(claim, "prescriber_id")}
        pricing = {
            name: encode_overpunch(_decimal(claim[key]), 2, 8)
            for name, key in (("D9", "ingredient_cost_submitted"), ("DQ", "usual_and_customary"))
            if claim.get(key) is not None
        }
        self.handle.write(
            header
            + self._segment("04", insurance)
            + self._segment("01", patient)
            + GS
            + self._segment("07", claim_segment)
            + self._segment("03", prescriber)
            + self._segment("11", pricing)
            + "\n"
        )

    def close(self) -> None:
        self.handle.close()


class _X12Writer(_Writer):
    """One 837P interchange: a billing provider, then a subscriber loop and claim each."""

    def __init__(self, path: Path) -> None:
        self.handle: IO[str] = path.open("w", encoding="utf-8", newline="")
        self.segments = 0  # ST..SE, for SE01
        self.hl = 1
        self.handle.write(
            "ISA*00*          *00*          *ZZ*RXFLEETBENCH   *ZZ*PBMGATEWAY     "
            "*261120*1200*^*00501*000000001*0*T*:~\n"
            "GS*HC*RXFLEETBENCH*PBMGATEWAY*20261120*1200*1*X*005010X222A1~\n"
        )
        self._seg("ST*837*0001*005010X222A1")
        self._seg("BHT*0019*00*BENCH0001*20261120*1200*CH")
        self._seg("NM1*41*2*RXFLEET BENCH*****46*BENCH01")
        self._seg("NM1*40*2*PBM GATEWAY*****46*PBM01")
        self._seg("HL*1**20*1")
        self._seg("NM1*85*2*BENCH PHARMACY*****XX*1871523647")

    def _seg(self, text: str) -> None:
        self.handle.write(text + "~\n")
        self.segments += 1

    def write(self, claim: dict[str, Any]) -> None:
        self.hl += 1
        charge = _text(claim, "ingredient_cost_submitted") or "0"
        quantity = _text(claim, "quantity_dispensed")
        pos = _text(claim, "pos") or "01"
        self._seg(f"HL*{self.hl}*1*22*0")
        self._seg(f"SBR*P*18*{_text(claim, 'group_id')}******CI")
        self._seg(
            f"NM1*IL*1*{_text(claim, 'patient_last_name')}*{_text(claim, 'patient_first_name')}"
            f"****MI*{_text(claim, 'cardholder_id')}"
        )
        self._seg(f"DMG*D8*{_ccyymmdd(claim.get('date_of_birth'))}*U")
        self._seg(f"NM1*PR*2*SANDBOX PLAN*****PI*{PAYER_ID}")
        self._seg(f"CLM*{_text(claim, 'claim_id')}*{charge}***{pos}:B:1*Y*A*Y*Y")
        self._seg(f"NM1*DK*1*PRESCRIBER*BENCH****XX*{_text(claim, 'prescriber_id')}")
        self._seg("LX*1")
        self._seg(f"SV1*HC:J3490*{charge}*UN*{quantity}*{pos}**1")
        self._seg(f"DTP*472*D8*{_ccyymmdd(claim.get('date_of_service'))}")
        self._seg(f"LIN**N4*{_ndc11(_text(claim, 'ndc'))}")
        self._seg(f"CTP****{quantity}*UN")
        self._seg(f"REF*XZ*{_text(claim, 'rx_number')}")

    def close(self) -> None:
        self._seg(f"SE*{self.segments + 1}*0001")
        self.handle.write("GE*1*1~\nIEA*1*000000001~\n")
        self.handle.close()


_WRITERS: dict[str, Callable[[Path], _Writer]] = {
    "jsonl": _JsonlWriter,
    "csv": _CsvWriter,
    "parquet": _ParquetWriter,
    "ncpdp": _NcpdpWriter,
    "837": _X12Writer,
}


class _All:
    """Every requested writer, closed together."""

    def __init__(self, out: Path, n: int, formats: list[str]) -> None:
        self.writers: list[_Writer] = []
        for fmt in formats:
            self.writers.append(_WRITERS[fmt](path_for(out, n, fmt)))

    def __enter__(self) -> _All:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for writer in self.writers:
            writer.close()


def generate(n: int, out: Path, formats: list[str] | None = None, seed: int = 2026) -> list[Path]:
    """Write ``n`` claims in every format of ``formats`` (all by default) under ``out``."""
    wanted = list(formats or FORMATS)
    out.mkdir(parents=True, exist_ok=True)
    with _All(out, n, wanted) as writers:
        for claim in claims(n, seed):
            for writer in writers.writers:
                writer.write(claim)
    return [path_for(out, n, fmt) for fmt in wanted]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--claims", type=int, default=1_000_000, help="number of claims")
    parser.add_argument("--out", type=Path, default=Path("bench/out"), help="output folder")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    paths = generate(args.claims, args.out, args.formats, args.seed)
    elapsed = time.perf_counter() - started
    for path in paths:
        print(f"{path}  {path.stat().st_size / 1e6:9.1f} MB")
    print(f"{args.claims} claims in {elapsed:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
