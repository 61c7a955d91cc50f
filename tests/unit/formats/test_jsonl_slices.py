"""A JSONL file cut into slices (what the producer ships to the intake link) reads back
as exactly the records the whole-file reader gives: numbers, fields, problems."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from rxfleet.errors import InputError
from rxfleet.formats.base import Record
from rxfleet.formats.jsonl import jsonl_slices, read_jsonl, read_slice


def _facts(records: list[Record]) -> list[tuple[int, object, object]]:
    return [(r.number, r.fields, r.problem) for r in records]


def _random_file(rng: random.Random, path: Path) -> None:
    lines = []
    for i in range(rng.randint(1, 40)):
        roll = rng.random()
        line = (
            ""
            if roll < 0.2
            else "  "
            if roll < 0.25
            else "not json"
            if roll > 0.9
            else (f'{{"claim_id": "C{i}", "ndc": "00071015523"}}')
        )
        lines.append(line + rng.choice(["\n", "\r\n", "\r"]))
    text = "".join(lines)
    if rng.random() < 0.3:
        text = text.rstrip("\r\n")
    bom = "\ufeff" if rng.random() < 0.2 else ""
    path.write_bytes((bom + text).encode())


@pytest.mark.parametrize("seed", range(60))
def test_slices_read_back_as_the_whole_file(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    path = tmp_path / "claims.jsonl"
    _random_file(rng, path)
    size = rng.randint(1, 7)
    try:
        want = _facts(list(read_jsonl(str(path))))
    except InputError:
        with pytest.raises(InputError, match="empty file"):
            list(jsonl_slices(str(path), size))
        return
    got: list[Record] = []
    for piece in jsonl_slices(str(path), size):
        records = list(read_slice(str(path), piece.first_line, piece.data))
        assert len(records) == piece.count <= size
        got += records
    assert _facts(got) == want


def test_a_crlf_split_across_read_chunks_is_one_line_end(tmp_path: Path) -> None:
    from rxfleet.formats.textio import CHUNK

    first = '{"claim_id": "A"}'.ljust(CHUNK - 1) + "\r\n"  # \r ends one chunk, \n starts the next
    path = tmp_path / "claims.jsonl"
    path.write_text(first + '{"claim_id": "B"}\r\n', newline="")
    pieces = list(jsonl_slices(str(path), 1))
    assert [(p.first_line, p.count) for p in pieces] == [(1, 1), (2, 1)]
    assert pieces[0].data.endswith(b"\r\n") and pieces[1].data.startswith(b"{")
