"""The JSON Lines, CSV and Parquet readers."""

from __future__ import annotations

import json
import struct
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.errors import InputError
from rxfleet.formats.base import Problem, Record
from rxfleet.formats.csvfile import read_csv
from rxfleet.formats.jsonl import read_jsonl
from rxfleet.formats.parquet import at_precision, read_parquet

CLAIM: dict[str, Any] = {
    "claim_id": "RX00000001",
    "bin": "610014",
    "pcn": "RXSANDBX",
    "cardholder_id": "ZH123456789",
    "date_of_service": "2026-11-01",
    "ndc": "0071-0155-23",
    "quantity_dispensed": 30,
    "days_supply": 30,
    "plan_id": "PLAN-COMM",
}


def _write(tmp_path: Path, name: str, data: str | bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return str(path)


def _line(claim_id: str, **extra: Any) -> str:
    return json.dumps({**CLAIM, "claim_id": claim_id, **extra})


# --- JSON Lines -------------------------------------------------------------------------


def test_jsonl_records_in_order_with_line_numbers(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.jsonl", _line("A") + "\n" + _line("B") + "\n")
    records = list(read_jsonl(path))
    assert [(r.number, r.fields["claim_id"], r.problem) for r in records] == [
        (1, "A", None),
        (2, "B", None),
    ]
    assert records[0].source == path
    assert records[0].fields == {**CLAIM, "claim_id": "A"}  # values as sent, JSON types kept


def test_jsonl_blank_lines_skipped_but_counted(tmp_path: Path) -> None:
    text = "\n" + _line("A") + "\n   \n\t\r\n" + _line("B") + "\r\n\n"
    records = list(read_jsonl(_write(tmp_path, "c.jsonl", text)))
    assert [(r.number, r.fields["claim_id"]) for r in records] == [(2, "A"), (5, "B")]
    assert all(r.problem is None for r in records)


def test_jsonl_no_final_newline(tmp_path: Path) -> None:
    records = list(read_jsonl(_write(tmp_path, "c.jsonl", _line("A") + "\n" + _line("B"))))
    assert [r.fields["claim_id"] for r in records] == ["A", "B"]


def test_jsonl_malformed_line_is_a_problem_with_its_number(tmp_path: Path) -> None:
    text = _line("A") + '\n{"claim_id": "B", "bin": \n{not json}\n' + _line("D") + "\n"
    records = list(read_jsonl(_write(tmp_path, "c.jsonl", text)))
    assert [r.number for r in records] == [1, 2, 3, 4]
    assert records[0].problem is None and records[3].problem is None
    for record in records[1:3]:
        assert isinstance(record.problem, Problem)
        assert record.problem.code == "MALFORMED_RECORD"
        assert "not JSON" in record.problem.message
    assert records[1].fields == {"claim_id": "B"}  # the id, when it can be seen, is kept
    assert records[2].fields == {}


def test_jsonl_problem_never_quotes_the_line(tmp_path: Path) -> None:
    text = '{"claim_id": "A", "patient_last_name": "QUILLFEATHER", \n'
    (record,) = read_jsonl(_write(tmp_path, "c.jsonl", text))
    assert record.problem is not None
    assert "QUILLFEATHER" not in record.problem.message
    assert "QUILLFEATHER" not in repr(record.fields)


def test_jsonl_a_key_given_twice_quarantines_the_claim_with_its_code(tmp_path: Path) -> None:
    text = (
        '{"claim_id": "D1", "group_id": "GRP1", "group_id": "GRP2"}\n'
        '{"claim_id": "D2", "x-Zanzibar": "WHISTLEDOWN", "x-Zanzibar": 1}\n'
        '{"claim_id": "D3", "group_id": "GRP1"}\n'
    )
    first, second, third = read_jsonl(_write(tmp_path, "c.jsonl", text))
    assert first.problem == Problem("DUPLICATE_FIELD", "a field is given twice", "group_id")
    assert first.fields == {"claim_id": "D1"}  # no value kept: neither is the one meant
    assert second.problem is not None and second.problem.field is None  # not echoed
    assert "Zanzibar" not in repr(second) and "WHISTLEDOWN" not in repr(second)
    assert third.problem is None and third.fields == {"claim_id": "D3", "group_id": "GRP1"}


@pytest.mark.parametrize("line", ["[1, 2]", '"a claim"', "42", "null", "true"])
def test_jsonl_non_object_is_a_problem(tmp_path: Path, line: str) -> None:
    (record,) = read_jsonl(_write(tmp_path, "c.jsonl", line + "\n"))
    assert record.problem == Problem("MALFORMED_RECORD", "not a JSON object")
    assert record.number == 1 and record.fields == {}


def test_jsonl_bom_on_the_first_line(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbf" + _line("A").encode() + b"\n" + _line("B").encode() + b"\n"
    records = list(read_jsonl(_write(tmp_path, "c.jsonl", data)))
    assert [r.fields.get("claim_id") for r in records] == ["A", "B"]
    assert all(r.problem is None for r in records)


def test_jsonl_bad_utf8_line_is_a_problem_the_rest_read(tmp_path: Path) -> None:
    bad = b'{"claim_id": "B", "patient_last_name": "M\xfcller"}'
    data = _line("A").encode() + b"\n" + bad + b"\n" + _line("C").encode() + b"\n"
    records = list(read_jsonl(_write(tmp_path, "c.jsonl", data)))
    assert [r.number for r in records] == [1, 2, 3]
    assert records[1].problem == Problem("MALFORMED_RECORD", "line is not UTF-8")
    assert records[0].problem is None and records[2].problem is None


def test_jsonl_non_ascii_text_is_fine(tmp_path: Path) -> None:
    (record,) = read_jsonl(_write(tmp_path, "c.jsonl", _line("A", patient_last_name="Müller")))
    assert record.fields["patient_last_name"] == "Müller"


def test_jsonl_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        list(read_jsonl(str(tmp_path / "missing.jsonl")))


# --- CSV --------------------------------------------------------------------------------

HEADER = ",".join(CLAIM)


def _row(claim_id: str, **change: Any) -> str:
    return ",".join(str({**CLAIM, "claim_id": claim_id, **change}[k]) for k in CLAIM)


def test_csv_rows_as_text_with_line_numbers(tmp_path: Path) -> None:
    text = HEADER + "\n" + _row("A") + "\n" + _row("B") + "\n"
    records = list(read_csv(_write(tmp_path, "c.csv", text)))
    assert [(r.number, r.fields["claim_id"]) for r in records] == [(2, "A"), (3, "B")]
    assert records[0].fields == {k: str(v) for k, v in {**CLAIM, "claim_id": "A"}.items()}
    assert all(r.problem is None for r in records)


def test_csv_header_names_are_trimmed_and_any_order(tmp_path: Path) -> None:
    text = " ndc , claim_id,bin\r\n0071-0155-23,A,610014\r\n"
    (record,) = read_csv(_write(tmp_path, "c.csv", text))
    assert record.fields == {"ndc": "0071-0155-23", "claim_id": "A", "bin": "610014"}


def test_csv_bom_and_blank_rows(tmp_path: Path) -> None:
    text = "\ufeff" + HEADER + "\n\n" + _row("A") + "\n,,,,,,,,\n" + _row("B") + "\n"
    records = list(read_csv(_write(tmp_path, "c.csv", text)))
    assert [(r.number, r.fields["claim_id"]) for r in records] == [(3, "A"), (5, "B")]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty file"),
        ("bin,ndc\n610014,x\n", "no claim_id"),
        ("claim_id,ndc,member_ssn\nA,x,1\n", "unknown columns: member_ssn"),
        ("claim_id,Bin\nA,1\n", "unknown columns: Bin"),
        ("claim_id,cardholder_id,cardholder_id\nA,1,2\n", "column twice: cardholder_id"),
    ],
)
def test_csv_bad_header_is_an_input_error(tmp_path: Path, text: str, reason: str) -> None:
    path = _write(tmp_path, "c.csv", text)
    with pytest.raises(InputError) as caught:
        list(read_csv(path))
    assert reason in caught.value.reason
    assert caught.value.path == path and caught.value.line == 1


def test_csv_short_and_long_rows_are_named_by_file_and_line_only(tmp_path: Path) -> None:
    # Issue 16: a misaligned record's columns cannot be trusted (the cell under
    # claim_id may hold a name), so it is named <file-stem>:<line>, nothing else kept.
    text = HEADER + "\nA,610014\n" + _row("B") + ",extra\n" + _row("C") + "\n"
    records = list(read_csv(_write(tmp_path, "c.csv", text)))
    assert [r.number for r in records] == [2, 3, 4]
    short, long, good = records
    assert short.fields == {"claim_id": "c:2"} and long.fields == {"claim_id": "c:3"}
    for record in (short, long):
        assert record.problem is not None and record.problem.code == "FIELD_COUNT_MISMATCH"
        assert "fields, header has" in record.problem.message
    assert good.problem is None


def test_csv_short_row_without_the_claim_id_column(tmp_path: Path) -> None:
    text = "bin,pcn,claim_id\n610014\n"
    (record,) = read_csv(_write(tmp_path, "c.csv", text))
    assert record.fields == {"claim_id": "c:2"} and record.problem is not None


def test_csv_one_record_is_one_claim_and_a_stray_quote_spoils_its_line_only(
    tmp_path: Path,
) -> None:
    # Issue 11: a quote left open spoils its own line only (before: it swallowed the
    # following lines into one record). Issue 16: a quoted field that holds line ends
    # is one claim, numbered by its first line (intake then refuses the line end in
    # its value: CONTROL_CHARACTER), and the claims after it stay aligned.
    text = (
        "claim_id,pcn,bin\n"
        'A,"RX\nSAND\r\nBX",610014\n'  # lines 2-4: one record, a quoted field
        "B,RXSANDBX,610014\n"  # line 5
        'C,"a ""quoted"" pcn",610014\n'  # line 6: balanced quotes are fine
        'D,"RXSAND,610014\n'  # line 7: unbalanced quote
        "E,RXSANDBX,610014\n"  # line 8
        'F,"RX\nBX,610014\n'  # lines 9-11: a stray quote that a later one closes,
        'G,RX",6100,14\n'  # with the wrong field count: each line on its own
        "H,RXSANDBX,610014\n"  # line 12
    )
    records = list(read_csv(_write(tmp_path, "c.csv", text)))
    assert [(r.number, r.problem.code if r.problem else None) for r in records] == [
        (2, None),
        (5, None),
        (6, None),
        (7, "MALFORMED_RECORD"),
        (8, None),
        (9, "MALFORMED_RECORD"),
        (10, "FIELD_COUNT_MISMATCH"),
        (11, "FIELD_COUNT_MISMATCH"),
        (12, None),
    ]
    assert records[0].fields == {"claim_id": "A", "pcn": "RX\nSAND\r\nBX", "bin": "610014"}
    assert records[2].fields["pcn"] == 'a "quoted" pcn'


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
def test_csv_and_jsonl_lines_end_at_cr_lf_or_crlf(tmp_path: Path, ending: str) -> None:
    text = ending.join([HEADER, _row("A"), _row("B"), _row("C")]) + ending
    assert [r.fields["claim_id"] for r in read_csv(_write(tmp_path, "c.csv", text))] == [
        "A",
        "B",
        "C",
    ]
    lines = ending.join(_line(c) for c in "ABC")
    records = list(read_jsonl(_write(tmp_path, "c.jsonl", lines)))
    assert [(r.number, r.fields["claim_id"], r.problem) for r in records] == [
        (1, "A", None),
        (2, "B", None),
        (3, "C", None),
    ]


def test_csv_unquoted_comma_in_a_name_keeps_no_value(tmp_path: Path) -> None:
    row = _row("A", pcn="GARCIA, JR")
    text = "\n".join([HEADER, _row("Z"), row, _row("B")]) + "\n"
    records = list(read_csv(_write(tmp_path, "claims.csv", text)))
    assert [r.fields.get("claim_id") for r in records] == ["Z", "claims:3", "B"]
    bad = records[1]
    assert bad.problem is not None and bad.problem.code == "FIELD_COUNT_MISMATCH"
    assert bad.fields == {"claim_id": "claims:3"}
    assert "GARCIA" not in bad.problem.message and " JR" not in bad.problem.message


def test_csv_bad_utf8_line_is_quarantined(tmp_path: Path) -> None:
    # One rule for every format (issue 11): a line that is not UTF-8 is quarantined.
    data = (HEADER + "\n").encode() + _row("A", pcn="RX\udcff").encode("utf-8", "surrogateescape")
    (record,) = list(read_csv(_write(tmp_path, "c.csv", data + b"\n")))
    assert record.problem is not None and "not UTF-8" in record.problem.message
    assert "pcn" not in record.fields


def test_csv_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        list(read_csv(str(tmp_path / "missing.csv")))


# --- Parquet ----------------------------------------------------------------------------


def _parquet(tmp_path: Path, rows: list[dict[str, Any]], row_group_size: int = 1000) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(rows), str(path), row_group_size=row_group_size)
    return str(path)


def test_parquet_rows_in_order_typed(tmp_path: Path) -> None:
    rows = [
        {**CLAIM, "claim_id": f"RX{i:04d}", "date_of_birth": date(1980, 1, 1 + i % 28)}
        for i in range(25)
    ]
    path = _parquet(tmp_path, rows, row_group_size=7)
    records = list(read_parquet(path))
    assert [r.number for r in records] == list(range(1, 26))
    assert [r.fields["claim_id"] for r in records] == [row["claim_id"] for row in rows]
    assert records[3].fields == rows[3]
    assert records[3].fields["quantity_dispensed"] == 30  # typed columns stay typed
    assert records[3].fields["date_of_birth"] == date(1980, 1, 4)
    assert all(r.problem is None and r.source == path for r in records)


def test_parquet_batches_across_row_groups(tmp_path: Path) -> None:
    from rxfleet.formats import parquet as module

    n = module.BATCH_ROWS + 5
    rows = [{"claim_id": f"C{i}", "bin": "610014"} for i in range(n)]
    records = list(read_parquet(_parquet(tmp_path, rows, row_group_size=3000)))
    assert len(records) == n
    assert records[-1].number == n and records[-1].fields["claim_id"] == f"C{n - 1}"


def test_parquet_nulls_are_dropped(tmp_path: Path) -> None:
    rows = [
        {**CLAIM, "claim_id": "A", "pos": None, "group_id": "G1"},
        {**CLAIM, "claim_id": "B", "pos": "01", "group_id": None},
    ]
    a, b = read_parquet(_parquet(tmp_path, rows))
    assert "pos" not in a.fields and a.fields["group_id"] == "G1"
    assert "group_id" not in b.fields and b.fields["pos"] == "01"


def test_parquet_unknown_columns_are_an_input_error(tmp_path: Path) -> None:
    path = _parquet(tmp_path, [{**CLAIM, "member_ssn": "123-45-6789"}])
    with pytest.raises(InputError, match="unknown columns: member_ssn") as caught:
        list(read_parquet(path))
    assert "123-45-6789" not in str(caught.value)


def test_parquet_without_claim_id_is_an_input_error(tmp_path: Path) -> None:
    path = _parquet(tmp_path, [{"bin": "610014"}])
    with pytest.raises(InputError, match="no claim_id column"):
        list(read_parquet(path))


@pytest.mark.parametrize("data", [b"", b"PAR1", b"PAR1 this is not parquet PAR1", b"{}"])
def test_parquet_unreadable_is_an_input_error(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(InputError, match="not a readable Parquet file"):
        list(read_parquet(_write(tmp_path, "c.parquet", data)))


def test_every_reader_yields_records(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.jsonl", _line("A"))
    assert all(isinstance(r, Record) for r in read_jsonl(path))
    assert set(CLAIM) <= set(CANONICAL_FIELDS)


# --- issue 11: bad input is one bad record, never a traceback ------------------------


JSONL_BAD = [
    ("nested 1,000 deep", '{"claim_id": "A", "x": ' + "[" * 1000 + "]" * 1000 + "}"),
    ("integer of 5,000 digits", '{"claim_id": "A", "quantity_dispensed": ' + "9" * 5000 + "}"),
    ("lone surrogate", '{"claim_id": "A", "patient_last_name": "\\ud800"}'),
    ("lone surrogate in a key", '{"claim_id": "A", "\\udfff": 1}'),
    ("lone surrogate, upper-case escape", '{"claim_id": "A", "x": ["\\uDBFF"]}'),
    ("nested 33 deep", '{"claim_id": "A", "x": ' + "[" * 32 + "]" * 32 + "}"),
]


@pytest.mark.parametrize("line", [
    '{"claim_id": "A", "x": ' + "[" * 31 + "]" * 31 + "}",  # 32 deep: the limit
    '{"claim_id": "A", "x": "\\\\ud800", "y": "\\ud7ff \\ue000 \\ud83d\\ude00"}',
])  # fmt: skip
def test_jsonl_lines_near_the_hostile_ones_are_read(tmp_path: Path, line: str) -> None:
    # At the depth limit, an escaped backslash before "ud800", a surrogate pair: all
    # fine, whatever shortcut the reader takes.
    records = list(read_jsonl(_write(tmp_path, "c.jsonl", line + "\n")))
    assert records[0].problem is None, records[0].problem


@pytest.mark.parametrize("line", [c[1] for c in JSONL_BAD], ids=[c[0] for c in JSONL_BAD])
def test_jsonl_hostile_line_is_one_malformed_record(tmp_path: Path, line: str) -> None:
    text = line + "\n" + _line("B") + "\n"
    records = list(read_jsonl(_write(tmp_path, "c.jsonl", text)))
    assert [r.problem.code if r.problem else None for r in records] == ["MALFORMED_RECORD", None]
    assert records[0].fields.get("claim_id") == "A"
    assert records[0].problem is not None and records[0].problem.message


EMPTY = [
    ("c.jsonl", read_jsonl, b""),
    ("c.jsonl", read_jsonl, b"\n\n  \n"),
    ("c.csv", read_csv, b"claim_id,bin\n"),
    ("c.csv", read_csv, b"claim_id,bin\n,\n\n"),
]


@pytest.mark.parametrize(("name", "reader", "data"), EMPTY)
def test_empty_file_is_an_input_error(tmp_path: Path, name: str, reader: Any, data: bytes) -> None:
    # One rule for every format (issue 11): no claims at all is InputError.
    with pytest.raises(InputError, match="empty file: no claims"):
        list(reader(_write(tmp_path, name, data)))


def test_parquet_empty_file_is_an_input_error(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({"claim_id": pa.array([], pa.string())}), path)
    with pytest.raises(InputError, match="empty file: no claims"):
        list(read_parquet(str(path)))


def test_parquet_unconvertible_values_spoil_their_row_only(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    names = pa.array([b"DOE", b"\xff\xfe", b"ROE"], pa.binary()).view(pa.string())
    days = pa.array([20000, 3_000_000, 20001], pa.int32()).cast(pa.date32())  # > year 9999
    dates = pa.array([20000, 20000, 20000], pa.int32()).cast(pa.date32())
    table = pa.table(
        {
            "claim_id": ["A", "B", "C"],
            "patient_last_name": names,
            "date_of_service": pa.array([20000, 20000, 20000], pa.int32()).cast(pa.date32()),
            "date_of_birth": pa.array([1, 1, 1], pa.int32()).cast(pa.date32()),
        }
    )
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    table2 = table.set_column(2, "date_of_service", days).set_column(1, "patient_last_name", dates)
    path2 = tmp_path / "bad2.parquet"
    pq.write_table(table2.drop(["patient_last_name"]), path2)
    for file, column in ((path, "patient_last_name"), (path2, "date_of_service")):
        records = list(read_parquet(str(file)))
        assert [r.problem.code if r.problem else None for r in records] == [
            None,
            "MALFORMED_RECORD",
            None,
        ]
        assert records[1].problem is not None and records[1].problem.field == column
        assert records[1].fields == {"claim_id": "B"}


def test_parquet_corrupt_page_raises_input_cut_short(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rxfleet.errors import InputCutShort

    path = tmp_path / "corrupt.parquet"
    rows = [f"ID{i:06d}" for i in range(3000)]
    pq.write_table(pa.table({"claim_id": rows}), path, row_group_size=1000, compression="snappy")
    meta = pq.ParquetFile(path).metadata
    second = meta.row_group(1).column(0)
    start = second.data_page_offset
    data = bytearray(path.read_bytes())
    for i in range(start + 20, start + second.total_compressed_size - 4):
        data[i] = 0xFF
    path.write_bytes(bytes(data))
    got: list[Record] = []
    with pytest.raises(InputCutShort) as caught:
        for record in read_parquet(str(path)):
            got.append(record)
    assert isinstance(caught.value, InputError)
    assert caught.value.position == len(got) and len(got) % 1000 == 0


@pytest.mark.parametrize(("kind", "fmt"), [("float32", "f"), ("float16", "e"), ("float64", "d")])
def test_parquet_floats_read_at_their_columns_precision(
    tmp_path: Path, kind: str, fmt: str
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rxfleet.claims.validation import validate

    values = [10.10, 0.1, 30.0, 123.45]
    table = pa.table(
        {
            "claim_id": [f"F{i}" for i in range(len(values))],
            "quantity_dispensed": pa.array(values, type=getattr(pa, kind)()),
            "ingredient_cost_submitted": pa.array(values, type=getattr(pa, kind)()),
        }
    )
    path = tmp_path / "f.parquet"
    pq.write_table(table, path)
    records = list(read_parquet(str(path)))
    for value, record in zip(values, records, strict=True):
        # what the column stores, read back as the shortest decimal of that precision
        stored = struct.unpack(fmt, struct.pack(fmt, value))[0]
        assert record.fields["quantity_dispensed"] == at_precision(stored, fmt)
        assert struct.pack(fmt, record.fields["quantity_dispensed"]) == struct.pack(fmt, value)
    if kind == "float32":
        assert [r.fields["quantity_dispensed"] for r in records] == values
        fields = {**{k: v for k, v in CLAIM.items() if k != "cardholder_id"}, **records[0].fields}
        codes = {issue.code for issue in validate(fields, today=date(2026, 11, 20)).issues}
        assert not codes & {"QUANTITY_TOO_PRECISE", "INVALID_AMOUNT"}, codes


@given(st.floats(width=32, allow_nan=False))
def test_at_precision_is_the_shortest_round_trip(value: float) -> None:
    got = at_precision(value, "f")
    assert struct.pack("f", got) == struct.pack("f", value)
    assert len(repr(got).replace("-", "").replace(".", "").split("e")[0].strip("0")) <= 9
