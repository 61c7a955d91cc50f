"""PHI: keyed tokens and the vault's AES-GCM sealing."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxfleet.claims.phi import TOKEN_PREFIX, PhiTokenizer, VaultCipher, key_bytes

KEY_A = b"a" * 32
KEY_B = b"b" * 32
PHI = {
    "cardholder_id": "ZH123456789",
    "patient_first_name": "AVA",
    "patient_last_name": "QUILLFEATHER",
    "date_of_birth": "1980-02-25",
}


def test_token_is_deterministic_per_key() -> None:
    one, two = PhiTokenizer(KEY_A), PhiTokenizer(KEY_A)
    token = one.token("ZH123456789")
    assert token == two.token("ZH123456789")
    assert token.startswith(TOKEN_PREFIX) and len(token) == len(TOKEN_PREFIX) + 32
    assert one.token("  ZH123456789\n") == token  # trimmed
    assert one.token("zh123456789") != token  # case kept


def test_tokens_differ_across_keys_kinds_and_values() -> None:
    a, b = PhiTokenizer(KEY_A), PhiTokenizer(KEY_B)
    assert a.token("ZH123456789") != b.token("ZH123456789")
    assert a.token("ZH123456789") != a.token("ZH123456789", kind="patient_last_name")
    assert a.token("ZH123456789") != a.token("ZH123456788")


@settings(max_examples=100, deadline=None)
@given(st.text(min_size=1, max_size=40).filter(lambda v: v.strip()))
def test_token_never_contains_the_value(value: str) -> None:
    token = PhiTokenizer(KEY_A).token(value)
    hexpart = token.removeprefix(TOKEN_PREFIX)
    assert len(hexpart) == 32 and all(c in "0123456789abcdef" for c in hexpart)
    if len(value.strip()) >= 4:
        assert value.strip() not in token


@pytest.mark.parametrize("cls", [PhiTokenizer, VaultCipher])
def test_short_keys_refused(cls: type[PhiTokenizer] | type[VaultCipher]) -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        cls(b"x" * 15)
    cls(b"x" * 16)


def test_seal_open_round_trip() -> None:
    vault = VaultCipher(KEY_A)
    blob = vault.seal(PHI, context="run1:7")
    assert vault.open(blob, context="run1:7") == PHI
    assert VaultCipher(KEY_A).open(blob, context="run1:7") == PHI  # another instance
    with_none = {**PHI, "patient_first_name": None}
    assert vault.open(vault.seal(with_none, context="c"), context="c") == with_none


def test_sealing_is_randomized() -> None:
    vault = VaultCipher(KEY_A)
    assert vault.seal(PHI, context="c") != vault.seal(PHI, context="c")


def test_sealed_blob_does_not_contain_the_plaintext() -> None:
    blob = VaultCipher(KEY_A).seal(PHI, context="run1:7")
    raw = base64.b64decode(blob)
    for value in PHI.values():
        assert value not in blob
        assert value.encode() not in raw
    assert json.dumps(PHI).encode() not in raw


@pytest.mark.parametrize("context", ["run1:8", "run2:7", "", "run1:7 "])
def test_wrong_context_fails(context: str) -> None:
    vault = VaultCipher(KEY_A)
    blob = vault.seal(PHI, context="run1:7")
    with pytest.raises(ValueError, match="does not open") as caught:
        vault.open(blob, context=context)
    assert all(value not in str(caught.value) for value in PHI.values())


def test_wrong_key_fails() -> None:
    blob = VaultCipher(KEY_A).seal(PHI, context="run1:7")
    with pytest.raises(ValueError, match="does not open"):
        VaultCipher(KEY_B).open(blob, context="run1:7")


def test_tampered_blob_fails() -> None:
    vault = VaultCipher(KEY_A)
    raw = bytearray(base64.b64decode(vault.seal(PHI, context="c")))
    raw[20] ^= 1
    with pytest.raises(ValueError):
        vault.open(base64.b64encode(bytes(raw)).decode(), context="c")


def test_key_bytes() -> None:
    assert key_bytes("sécret") == "sécret".encode()
