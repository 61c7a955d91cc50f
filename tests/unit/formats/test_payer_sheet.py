"""The payer sheet: NCPDP BIN, PCN and group to the plan id the reject matrix knows."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import get_settings
from rxfleet.claims.rejects import RejectMatrix, Route
from rxfleet.errors import InputError
from rxfleet.formats import Format, read_claims, reader_for
from rxfleet.formats.ncpdp import read_ncpdp
from rxfleet.formats.payer_sheet import NO_SHEET, PayerSheet, load_payer_sheet
from tests.unit.formats import ncpdp_build as b
from tests.unit.formats.ids import claim_id_of

HEADER = "bin,pcn,group_id,plan_id\n"
SHEET = PayerSheet(
    {
        ("610014", "RXSANDBX", "GRP100"): "PLAN-COMM",
        ("610014", "RXSANDBX", ""): "PLAN-ANY-GROUP",
        ("004336", "", "PDP001"): "PLAN-NO-PCN",
    }
)


def _sheet(tmp_path: Path, rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "payer_sheet.csv"
    path.write_text(header + rows, encoding="utf-8")
    return path


def _ncpdp(tmp_path: Path, *lines: str) -> str:
    path = tmp_path / "claims.ncpdp"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _without_rx_number() -> str:
    fields = b.claim()
    del fields["D2"]
    body = b.segment("04", b.INSURANCE) + b.segment("01", b.PATIENT)
    return b.header() + body + b.transaction(claim_fields=fields)


# --- lookup --------------------------------------------------------------------------


def test_an_exact_row_wins_over_the_group_less_row() -> None:
    assert SHEET.plan_for("610014", "RXSANDBX", "GRP100") == "PLAN-COMM"


@pytest.mark.parametrize("group", ["GRP999", ""])
def test_a_group_less_row_is_the_plan_of_any_other_group(group: str) -> None:
    assert SHEET.plan_for("610014", "RXSANDBX", group) == "PLAN-ANY-GROUP"


def test_a_blank_pcn_is_a_pcn_not_a_wildcard() -> None:
    assert SHEET.plan_for("004336", "", "PDP001") == "PLAN-NO-PCN"
    assert SHEET.plan_for("004336", "MEDDPRIME", "PDP001") is None


def test_values_are_compared_trimmed_and_case_kept() -> None:
    assert SHEET.plan_for("610014 ", "RXSANDBX  ", " GRP100") == "PLAN-COMM"
    assert SHEET.plan_for("610014", "rxsandbx", "GRP100") is None


def test_no_row_is_none() -> None:
    assert SHEET.plan_for("999999", "RXSANDBX", "GRP100") is None
    assert NO_SHEET.plan_for("610014", "RXSANDBX", "GRP100") is None


# --- loading -------------------------------------------------------------------------


def test_the_bundled_sheet_names_the_sandbox_plans() -> None:
    sheet = load_payer_sheet(get_settings().payer_sheet)
    assert sheet.plan_for("610014", "RXSANDBX", "GRP100") == "PLAN-COMM"
    assert sheet.plan_for("610014", "RXSANDBX", "GRP200") == "PLAN-COMM-HDHP"
    assert sheet.plan_for("004336", "MEDDPRIME", "PDP001") == "PLAN-PARTD"
    assert "PLAN-PARTD" in RejectMatrix.load(get_settings().reject_matrix).plan_overrides


def test_load_reads_rows_and_ignores_other_columns(tmp_path: Path) -> None:
    path = _sheet(
        tmp_path, "610014,RXSANDBX,,PLAN-A,a note\n", header="bin,pcn,group_id,plan_id,note\n"
    )
    assert load_payer_sheet(path).plans == {("610014", "RXSANDBX", ""): "PLAN-A"}


def test_a_second_row_for_the_same_key_is_refused_with_file_and_line(tmp_path: Path) -> None:
    rows = (
        "610014,RXSANDBX,GRP100,PLAN-A\n"
        "004336,MEDDPRIME,PDP001,PLAN-B\n"
        "610014,RXSANDBX, GRP100 ,PLAN-C\n"
    )
    path = _sheet(tmp_path, rows)
    with pytest.raises(InputError, match="second row") as caught:
        load_payer_sheet(path)
    assert caught.value.path == str(path) and caught.value.line == 4
    assert "first: line 2" in caught.value.reason


def test_a_group_less_row_beside_an_exact_row_is_no_duplicate(tmp_path: Path) -> None:
    path = _sheet(tmp_path, "610014,RXSANDBX,GRP100,PLAN-A\n610014,RXSANDBX,,PLAN-B\n")
    assert len(load_payer_sheet(path)) == 2


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("61001,RXSANDBX,GRP100,PLAN-A", "bin"),
        ("61001A,RXSANDBX,GRP100,PLAN-A", "bin"),
        ("610014,PCN4567890X,GRP100,PLAN-A", "pcn"),
        ("610014,RXSANDBX,G234567890123456,PLAN-A", "group_id"),
        ("610014,RXSANDBX,GRP100,", "plan_id"),
        ("610014,RXSANDBX,GRP100," + "P" * 65, "plan_id"),
    ],
)
def test_a_bad_row_is_refused_with_file_line_and_field(
    tmp_path: Path, row: str, field: str
) -> None:
    path = _sheet(tmp_path, "610014,RXSANDBX,GRP200,PLAN-OK\n" + row + "\n")
    with pytest.raises(InputError, match=f"field {field}:") as caught:
        load_payer_sheet(path)
    assert caught.value.path == str(path) and caught.value.line == 3


def test_the_longest_pcn_group_and_plan_load(tmp_path: Path) -> None:
    path = _sheet(tmp_path, f"610014,{'P' * 10},{'G' * 15},{'L' * 64}\n")
    assert load_payer_sheet(path).plan_for("610014", "P" * 10, "G" * 15) == "L" * 64


def test_a_header_without_the_columns_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="header must name") as caught:
        load_payer_sheet(_sheet(tmp_path, "610014,RXSANDBX,PLAN-A\n", header="bin,pcn,plan_id\n"))
    assert caught.value.line == 1


def test_a_missing_sheet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open payer sheet"):
        load_payer_sheet(tmp_path / "absent.csv")


# --- the NCPDP reader ----------------------------------------------------------------


def test_the_reader_takes_the_sheets_plan_and_keeps_the_claim_id(tmp_path: Path) -> None:
    path = _ncpdp(tmp_path, b.transmission(2))
    plain, sheeted = list(read_ncpdp(path)), list(read_ncpdp(path, SHEET))
    assert [r.fields["plan_id"] for r in plain] == ["610014-RXSANDBX-GRP100"] * 2
    assert [r.fields["plan_id"] for r in sheeted] == ["PLAN-COMM"] * 2
    assert [claim_id_of(r) for r in sheeted] == [claim_id_of(r) for r in plain]


def test_a_claim_without_402_d2_keeps_its_keyed_id_under_a_sheet(tmp_path: Path) -> None:
    path = _ncpdp(tmp_path, _without_rx_number())
    (plain,), (sheeted,) = list(read_ncpdp(path)), list(read_ncpdp(path, SHEET))
    assert sheeted.fields["plan_id"] == "PLAN-COMM" and sheeted.keyed_id is not None
    assert claim_id_of(sheeted) == claim_id_of(plain)


def test_a_claim_the_sheet_does_not_name_keeps_the_derived_id(tmp_path: Path) -> None:
    path = _ncpdp(tmp_path, b.transmission(1, bin_="999999"))
    (record,) = list(read_ncpdp(path, SHEET))
    assert record.fields["plan_id"] == "999999-RXSANDBX-GRP100"


def test_reader_for_and_read_claims_pass_the_sheet(tmp_path: Path) -> None:
    path = _ncpdp(tmp_path, b.transmission(1))
    (record,) = list(reader_for(Format.NCPDP, payer_sheet=SHEET)(path))
    assert record.fields["plan_id"] == "PLAN-COMM"
    (record,) = list(read_claims(path, payer_sheet=SHEET))
    assert record.fields["plan_id"] == "PLAN-COMM"


def test_a_plan_override_applies_to_a_sheeted_ncpdp_claim(tmp_path: Path) -> None:
    settings = get_settings()
    path = _ncpdp(
        tmp_path, b.transmission(1, bin_="004336", pcn="MEDDPRIME").replace("GRP100", "PDP001")
    )
    (plain,) = list(read_ncpdp(path))
    (sheeted,) = list(read_ncpdp(path, load_payer_sheet(settings.payer_sheet)))
    routes = RejectMatrix.load(settings.reject_matrix)
    assert routes.route_for(["70"], plain.fields["plan_id"]) is Route.FORMULARY_EXCEPTION
    assert routes.route_for(["70"], sheeted.fields["plan_id"]) is Route.REVIEW_REQUIRED
