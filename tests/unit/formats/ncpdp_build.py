"""Build NCPDP D.0 transmissions for tests, with an exact 56-byte header."""

from __future__ import annotations

RS, GS, FS = "\x1e", "\x1d", "\x1c"

PATIENT = {"C4": "19800225", "CA": "JANE", "CB": "DOE"}
INSURANCE = {"C2": "MBR123456", "CC": "JANE", "CD": "DOE", "C1": "GRP100"}


def header(
    *,
    bin_: str = "610014",
    version: str = "D0",
    code: str = "B1",
    pcn: str = "RXSANDBX",
    count: int = 1,
    provider: str = "1234567893",
    dos: str = "20260105",
) -> str:
    """The 56-byte request transaction header."""
    text = (
        bin_.ljust(6)
        + version
        + code
        + pcn.ljust(10)
        + str(count)
        + "01"
        + provider.ljust(15)
        + dos
        + "SWVENDOR01"
    )
    assert len(text) == 56
    return text


def segment(segment_id: str, fields: dict[str, str]) -> str:
    return RS + FS + "AM" + segment_id + "".join(FS + k + v for k, v in fields.items())


def claim(rx: str = "000000123456", **overrides: str) -> dict[str, str]:
    fields = {
        "EM": "1",
        "D2": rx,
        "E1": "03",
        "D7": "00003089421",
        "E7": "0000030000",
        "D3": "01",
        "D5": "030",
    }
    fields.update(overrides)
    return fields


def pricing(**overrides: str) -> dict[str, str]:
    fields = {"D9": "0000057A", "DQ": "0000100{", "DU": "0000218G"}
    fields.update(overrides)
    return fields


def transaction(rx: str = "000000123456", claim_fields: dict[str, str] | None = None) -> str:
    return (
        GS
        + segment("07", claim_fields or claim(rx))
        + segment("03", {"EZ": "01", "DB": "1982763546"})
        + segment("11", pricing())
    )


def transmission(count: int = 1, **header_args: str) -> str:
    body = segment("04", INSURANCE) + segment("01", PATIENT)
    groups = "".join(transaction(rx=f"{100 + i:012d}") for i in range(count))
    return header(count=count, **header_args) + body + groups


def response_header(status: str = "A", count: int = 1) -> str:
    text = "D0" + "B1" + str(count) + status + "01" + "1234567893".ljust(15) + "20260105"
    assert len(text) == 31
    return text
