from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rxfleet.claims.fields import RESULT_FIELDS
from rxfleet.claims.phi import PhiTokenizer, VaultCipher
from rxfleet.errors import ConfigError
from rxfleet.formats.base import KeyedId, Problem, Record
from rxfleet.links.ingest import Ingest
from rxfleet.output import write_results

CLAIM = {
    "claim_id": "C1",
    "bin": "610014",
    "pcn": "P",
    "cardholder_id": "ZH123456789",
    "patient_first_name": "PHILOMENA",
    "patient_last_name": "QUACKENBUSH",
    "date_of_birth": "1961-07-04",
    "ndc": "0071-0155-23",
    "plan_id": "X",
}


def _ingest() -> Ingest:
    return Ingest("R", PhiTokenizer(b"k" * 32), VaultCipher(b"v" * 32))


def test_ingest_keeps_no_phi_and_seals_it() -> None:
    ingest = _ingest()
    work, sealed = ingest(Record("f.jsonl", 3, dict(CLAIM)), 0)
    text = work.model_dump_json()
    for value in ("ZH123456789", "PHILOMENA", "QUACKENBUSH", "1961-07-04"):
        assert value not in text and value not in (sealed or "")
    # No person code: the person is the cardholder id, relationship and date of birth.
    expected = PhiTokenizer(b"k" * 32).person_token("ZH123456789", date_of_birth="1961-07-04")
    assert work.patient_token == expected
    assert ingest.vault.open(sealed or "", context="R:0")["patient_last_name"] == "QUACKENBUSH"


def test_dependents_on_one_card_get_their_own_tokens() -> None:
    ingest = _ingest()

    def token(**change: str) -> str | None:
        return ingest(Record("f.jsonl", 1, {**CLAIM, **change}), 0)[0].patient_token

    by_code = {token(person_code=code) for code in ("001", "002", "003")}
    assert len(by_code) == 3  # cardholder, spouse, child: three people
    assert token(person_code="002") == token(person_code="002", date_of_birth="1990-01-01")
    spouse = token(patient_relationship_code="2", date_of_birth="1962-01-01")
    child = token(patient_relationship_code="3", date_of_birth="2010-05-05")
    again = token(patient_relationship_code="3", date_of_birth="2010-05-05")
    assert len({spouse, child}) == 2 and child == again  # the same person, the same token
    assert token(date_of_birth="1961-07-04") == token(date_of_birth="19610704")
    assert all(t and t.startswith("pt_") for t in (*by_code, spouse, child))


def test_unknown_fields_keep_their_name_but_never_their_value() -> None:
    work, _ = _ingest()(Record("f.jsonl", 1, {**CLAIM, "member_name": "QUACKENBUSH"}), 0)
    assert work.fields["member_name"] == ""


def test_a_reader_problem_quarantines_with_only_its_code() -> None:
    record = Record("f.jsonl", 7, {"claim_id": "C9"}, Problem("MALFORMED_RECORD", "not JSON"))
    work, sealed = _ingest()(record, 4)
    assert work.quarantined and [i.code for i in work.issues] == ["MALFORMED_RECORD"]
    assert work.claim_id == "C9" and work.where == "f.jsonl:7" and sealed is None


def _rows() -> list[dict[str, object]]:
    return [
        {
            "claim_id": "A",
            "status": "PAID",
            "severity": "PASS",
            "errors": [],
            "ndc11": "00071015523",
            "gpi": "39400010100310",
            "reject_codes": [],
            "route": "CLEAN",
            "patient_token": "pt_x",
            "attempts": 1,
            "transaction_code": "B1",
            "reason": "PAYER",
            "amount_paid": Decimal("21.37"),
            "patient_pay": Decimal("10.00"),
            "authorization_number": "SBX0A1B2C3D4E5F",
            "source": "claims.jsonl:1",
        },
        {
            "claim_id": "B",
            "status": "REJECTED",
            "severity": "WARN",
            "errors": ["OBSOLETE_NDC"],
            "ndc11": None,
            "gpi": None,
            "reject_codes": ["75", "76"],
            "route": "PRIOR_AUTH",
            "patient_token": None,
            "attempts": 2,
            "transaction_code": "B3",
            "reason": "PAYER",
            "amount_paid": None,
            "patient_pay": None,
            "authorization_number": None,
            "source": "claims.ncpdp:4:2",
        },
    ]


def test_jsonl_csv_parquet_hold_the_same_rows(tmp_path: Path) -> None:
    for suffix in (".jsonl", ".csv", ".parquet"):
        assert write_results(str(tmp_path / f"r{suffix}"), iter(_rows())) == 2
    jsonl = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert jsonl == [_money_as(row, float) for row in _rows()]
    with (tmp_path / "r.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert (
        tuple(rows[0]) == RESULT_FIELDS
        and rows[1]["reject_codes"] == "75;76"
        and rows[1]["gpi"] == ""
    )
    assert pq.read_table(tmp_path / "r.parquet").to_pylist() == _rows()


def _money_as(row: dict[str, object], kind: type) -> dict[str, object]:
    money = ("amount_paid", "patient_pay")
    return {k: (kind(v) if k in money and v is not None else v) for k, v in row.items()}


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_the_money_the_why_and_the_source_round_trip(tmp_path: Path, suffix: str) -> None:
    """Issue 17's fields, read back from each format exactly as written."""
    path = tmp_path / f"r{suffix}"
    write_results(str(path), iter(_rows()))
    new = ("transaction_code", "reason", "amount_paid", "patient_pay",
           "authorization_number", "source")  # fmt: skip
    if suffix == ".jsonl":
        back = [json.loads(line) for line in path.read_text().splitlines()]
        expected = [_money_as(row, float) for row in _rows()]
        assert json.loads(path.read_text().splitlines()[0])["amount_paid"] == 21.37
    elif suffix == ".csv":
        with path.open() as handle:
            back = list(csv.DictReader(handle))
        expected = [{k: "" if v is None else str(v) for k, v in row.items()} for row in _rows()]
    else:
        back = pq.read_table(path).to_pylist()
        expected = _rows()
        assert str(pq.read_schema(path).field("amount_paid").type) == "decimal128(8, 2)"
    assert [{k: row[k] for k in new} for row in back] == [
        {k: row[k] for k in new} for row in expected
    ]


def test_unknown_output_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.jsonl, \.csv or \.parquet"):
        write_results(str(tmp_path / "r.xlsx"), iter(_rows()))


def test_keyed_claim_id_is_the_records_claim_id_field() -> None:
    keyed = KeyedId("X12", ("1234567893", "ACCT-1", "1", "20260101", ""))
    work, _ = _ingest()(
        Record("f.837", 31, {k: v for k, v in CLAIM.items() if k != "claim_id"}, keyed_id=keyed), 0
    )
    assert (
        work.claim_id
        == work.fields["claim_id"]
        == PhiTokenizer(b"k" * 32).claim_id("X12", keyed.parts)
    )
    assert "ACCT-1" not in work.model_dump_json()


@pytest.mark.parametrize("field", ["claim_id", "pcn", "patient_last_name", "group_id"])
def test_a_control_character_quarantines_its_field_by_name(field: str) -> None:
    fields = {**CLAIM, field: "QZX\x00QZX"}
    work, _ = _ingest()(Record("/in/claims.jsonl", 9, fields), 0)
    assert work.quarantined and [i.code for i in work.issues] == ["CONTROL_CHARACTER"]
    issue = work.issues[0]
    assert issue.field == field and issue.message.startswith("claims.jsonl:9: field " + field)
    assert "QZX" not in work.model_dump_json()
    assert work.claim_id == ("claims:9" if field == "claim_id" else "C1")


def test_a_control_character_in_a_field_name_is_escaped() -> None:
    work, _ = _ingest()(Record("f.jsonl", 2, {**CLAIM, "x\x1b": "1"}), 0)
    assert work.quarantined and work.issues[0].field == "x\\x1b"
    assert "\x1b" not in work.model_dump_json()


def test_a_submission_key_begins_with_the_claim_id_and_follows_the_content() -> None:
    """Issue 17: the same content (re-read, another format's types) keeps its key; a
    corrected value, PHI included, or another transaction code gets a new one."""
    ingest = _ingest()
    billed = dict(CLAIM, quantity_dispensed="30", days_supply=30)
    key = ingest(Record("f.jsonl", 1, billed), 0)[0].key
    assert key is not None and key.startswith("C1~") and len(key) == len("C1~") + 16
    same = dict(billed, quantity_dispensed=30.0, days_supply="30", transaction_code="B1")
    assert ingest(Record("g.csv", 9, same), 5)[0].key == key
    for change in ({"quantity_dispensed": "60"}, {"date_of_birth": "1961-07-05"},
                   {"transaction_code": "B2"}, {"ndc": "0071-0155-24"}):  # fmt: skip
        assert ingest(Record("f.jsonl", 1, {**billed, **change}), 0)[0].key != key
    assert "1961-07-04" not in (key or "") and "ZH123456789" not in (key or "")
    other = Ingest("R", PhiTokenizer(b"j" * 32), VaultCipher(b"v" * 32))
    assert other(Record("f.jsonl", 1, billed), 0)[0].key != key  # keyed: no key, no guess
