"""NDC normalization: every configuration, table-driven, then properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxfleet.claims.ndc import NdcError, format_ndc11, normalize_ndc

PROPERTY = settings(max_examples=200, deadline=None)

VALID = [
    # (as sent, 11-digit 5-4-2)
    ("0071-0155-23", "00071015523"),  # 4-4-2: pad the labeler
    ("68180-513-01", "68180051301"),  # 5-3-2: pad the product
    ("00093-1048-1", "00093104801"),  # 5-4-1: pad the package
    ("00074-4341-90", "00074434190"),  # 5-4-2 hyphenated: as is
    ("00069153068", "00069153068"),  # plain 11 digits: as is
    ("  0071-0155-23\t", "00071015523"),  # surrounding blanks ignored
    ("9999-9999-99", "09999999999"),
    ("99999-999-99", "99999099999"),
    ("99999-9999-9", "99999999909"),
]

REFUSED = [
    # (as sent, code)
    ("0071015523", "ERR_AMBIGUOUS_NDC"),  # plain 10 digits: which configuration?
    ("6818051301", "ERR_AMBIGUOUS_NDC"),
    # FDA labeler codes (21 CFR 207.35; NDC Directory) are never 00000.
    ("0000-0000-01", "ERR_INVALID_NDC_LABELER"),
    ("00000-1234-56", "ERR_INVALID_NDC_LABELER"),
    ("00000123456", "ERR_INVALID_NDC_LABELER"),
    ("00000000000", "ERR_INVALID_NDC_FORMAT"),  # the all-zero placeholder, plain
    ("00000-0000-00", "ERR_INVALID_NDC_FORMAT"),  # hyphenated 5-4-2
    ("0000-0000-00", "ERR_INVALID_NDC_FORMAT"),  # 4-4-2 that pads to all zero
    ("00000-000-00", "ERR_INVALID_NDC_FORMAT"),  # 5-3-2
    ("00000-0000-0", "ERR_INVALID_NDC_FORMAT"),  # 5-4-1
    ("0071-01552-3", "ERR_INVALID_NDC_FORMAT"),  # 4-5-1 is no configuration
    ("0071-015-23", "ERR_INVALID_NDC_FORMAT"),  # 4-3-2
    ("007-0155-23", "ERR_INVALID_NDC_FORMAT"),  # 3-4-2
    ("00071-01552-3", "ERR_INVALID_NDC_FORMAT"),  # 5-5-1
    ("000710155231", "ERR_INVALID_NDC_FORMAT"),  # 12 digits
    ("123456789", "ERR_INVALID_NDC_FORMAT"),  # 9 digits
    ("", "ERR_INVALID_NDC_FORMAT"),
    ("   ", "ERR_INVALID_NDC_FORMAT"),
    ("abcde-fghi-jk", "ERR_INVALID_NDC_FORMAT"),
    ("0071-0155-2X", "ERR_INVALID_NDC_FORMAT"),
    ("0071 0155 23", "ERR_INVALID_NDC_FORMAT"),
    ("0071--0155-23", "ERR_INVALID_NDC_FORMAT"),
    ("-0071-0155-23", "ERR_INVALID_NDC_FORMAT"),
    ("0071-0155-23-", "ERR_INVALID_NDC_FORMAT"),
    ("0071-0155-23\n0071-0155-23", "ERR_INVALID_NDC_FORMAT"),
    ("N4-00071015523", "ERR_INVALID_NDC_FORMAT"),
]


@pytest.mark.parametrize(("raw", "expected"), VALID)
def test_valid_configurations_normalize_to_5_4_2(raw: str, expected: str) -> None:
    assert normalize_ndc(raw) == expected


@pytest.mark.parametrize(("raw", "code"), REFUSED)
def test_refused(raw: str, code: str) -> None:
    with pytest.raises(NdcError) as caught:
        normalize_ndc(raw)
    assert caught.value.code == code
    digits = raw.strip().replace("-", "")
    if len(digits) >= 4 and digits != "0" * len(digits):
        assert digits not in str(caught.value)  # the message never quotes the value


def test_ndc_error_is_a_value_error() -> None:
    assert issubclass(NdcError, ValueError)


def test_format_ndc11() -> None:
    assert format_ndc11("00071015523") == "00071-0155-23"


# --- properties ---------------------------------------------------------------------------

_ASCII_DIGIT = st.sampled_from("0123456789")


def _digits(n: int) -> st.SearchStrategy[str]:
    return st.text(_ASCII_DIGIT, min_size=n, max_size=n)


#: The three 10-digit configurations: segment lengths, and which segment gets the zero.
CONFIGURATIONS: dict[str, tuple[tuple[int, int, int], int]] = {
    "4-4-2": ((4, 4, 2), 0),
    "5-3-2": ((5, 3, 2), 1),
    "5-4-1": ((5, 4, 1), 2),
}


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
@PROPERTY
@given(data=st.data())
def test_every_10_digit_configuration_pads_to_5_4_2(name: str, data: st.DataObject) -> None:
    lengths, short = CONFIGURATIONS[name]
    parts = [data.draw(_digits(n)) for n in lengths]
    raw = "-".join(parts)
    expected = "".join("0" + part if i == short else part for i, part in enumerate(parts))
    if expected.startswith("00000"):  # labeler 00000 (or all zero): refused
        with pytest.raises(NdcError):
            normalize_ndc(raw)
        return
    ndc11 = normalize_ndc(raw)
    assert ndc11 == expected
    assert len(ndc11) == 11 and ndc11.isdigit()
    hyphenated = format_ndc11(ndc11)
    assert hyphenated.replace("-", "") == ndc11
    assert [len(part) for part in hyphenated.split("-")] == [5, 4, 2]
    assert normalize_ndc(hyphenated) == ndc11  # the 5-4-2 form round-trips
    assert normalize_ndc(ndc11) == ndc11  # normalizing the result is the identity


@PROPERTY
@given(_digits(11).filter(lambda d: set(d) != {"0"}))
def test_normalizing_11_digits_is_the_identity(ndc11: str) -> None:
    assert normalize_ndc(ndc11) == ndc11
    assert normalize_ndc(format_ndc11(ndc11)) == ndc11


@PROPERTY
@given(st.text(max_size=30))
def test_arbitrary_text_raises_only_ndc_error(raw: str) -> None:
    try:
        normalize_ndc(raw)
    except NdcError as exc:
        assert exc.code in {"ERR_INVALID_NDC_FORMAT", "ERR_AMBIGUOUS_NDC"}


@PROPERTY
@given(st.text(st.sampled_from("0123456789-  "), max_size=16))
def test_near_miss_text_raises_only_ndc_error(raw: str) -> None:
    try:
        result = normalize_ndc(raw)
    except NdcError:
        return
    assert len(result) == 11 and result.isdigit()


@pytest.mark.parametrize(
    "raw",
    [
        "\u0660" * 11,  # ARABIC-INDIC DIGIT ZERO x 11: .isdigit() is True
        "\u00b9" * 11,  # SUPERSCRIPT ONE x 11: .isdigit() is True
        "\uff10\uff10\uff10\uff17\uff11-0155-23",  # FULLWIDTH digits match re's \d
    ],
)
def test_non_ascii_digits_are_refused(raw: str) -> None:
    """str.isdigit() and re's \\d take any Unicode digit; an NDC is ASCII only."""
    with pytest.raises(NdcError) as caught:
        normalize_ndc(raw)
    assert caught.value.code == "ERR_INVALID_NDC_FORMAT"


@PROPERTY
@given(st.text(max_size=16))
def test_a_normalized_ndc_is_always_11_ascii_digits(raw: str) -> None:
    try:
        result = normalize_ndc(raw)
    except NdcError:
        return
    assert len(result) == 11 and result.isascii() and result.isdigit()
