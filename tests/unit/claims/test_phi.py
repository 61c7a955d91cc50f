"""PHI: keyed tokens and the vault's AES-GCM sealing."""

from __future__ import annotations

import base64
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxfleet.claims.phi import (
    TOKEN_PREFIX,
    PhiTokenizer,
    SecretSealer,
    VaultCipher,
    generate_key,
    key_id,
    looks_random,
    parse_key,
)
from rxfleet.errors import ConfigError

KEY_A = bytes(range(32))
KEY_B = bytes(range(100, 132))
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


@pytest.mark.parametrize("cls", [PhiTokenizer, VaultCipher, SecretSealer])
def test_keys_of_the_wrong_length_refused(
    cls: type[PhiTokenizer] | type[VaultCipher] | type[SecretSealer],
) -> None:
    for size in (16, 31, 33):
        with pytest.raises(ValueError, match="must be 32 bytes"):
            cls(bytes(range(size)))
    cls(KEY_A)


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
    raw = base64.b64decode(blob.partition(".")[2])
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
    kid, _, body = vault.seal(PHI, context="c").partition(".")
    raw = bytearray(base64.b64decode(body))
    raw[20] ^= 1
    with pytest.raises(ValueError):
        vault.open(f"{kid}.{base64.b64encode(bytes(raw)).decode()}", context="c")


def test_blobs_carry_the_key_id() -> None:
    blob = VaultCipher(KEY_A).seal(PHI, context="c")
    kid, dot, _ = blob.partition(".")
    assert dot and kid == key_id(KEY_A) and len(kid) == 8 and kid != key_id(KEY_B)
    assert int(kid, 16) >= 0


def test_rotation_old_blobs_open_new_blobs_use_the_new_key() -> None:
    before = VaultCipher(KEY_A).seal(PHI, context="run1:7")
    after_switch = VaultCipher(KEY_B, old=[KEY_A])
    assert after_switch.open(before, context="run1:7") == PHI
    fresh = after_switch.seal(PHI, context="run1:7")
    assert fresh.startswith(key_id(KEY_B) + ".")
    assert VaultCipher(KEY_B).open(fresh, context="run1:7") == PHI  # no old key needed
    with pytest.raises(ValueError, match="unknown key id") as caught:
        VaultCipher(KEY_B).open(before, context="run1:7")  # retired key dropped too early
    assert "RXFLEET_VAULT_KEYS_OLD" in str(caught.value)


def test_subkeys_differ_per_purpose() -> None:
    """The same key never serves two algorithms: tokens and the key id use HKDF subkeys."""
    import hashlib
    import hmac

    plain = hmac.new(KEY_A, b"cardholder_id\x1fZH1", hashlib.sha256).hexdigest()[:32]
    assert PhiTokenizer(KEY_A).token("ZH1") != TOKEN_PREFIX + plain


def test_generated_keys_parse_in_both_alphabets() -> None:
    text = generate_key()
    raw = parse_key(text, "K")
    assert len(raw) == 32
    standard = base64.b64encode(raw).decode()
    assert parse_key(standard, "K") == raw
    assert parse_key(standard.rstrip("="), "K") == raw  # padding optional
    assert generate_key() != text


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "32 random bytes in base64"),
        ("correct horse battery staple", "32 random bytes in base64"),
        (base64.b64encode(bytes(range(16))).decode(), "32 random bytes in base64"),
        (base64.b64encode(bytes(range(40))).decode(), "32 random bytes in base64"),
        (base64.b64encode(b"a" * 32).decode(), "weak"),
        (base64.b64encode(bytes([1, 2, 3, 4] * 8)).decode(), "weak"),
        (base64.b64encode(b"my pharmacy passphrase, 32 long!").decode(), "weak"),  # ASCII
        (base64.b64encode(bytes(range(32))).decode(), "weak"),  # 0..31: a sequence
        (base64.b64encode(bytes(range(200, 232))).decode(), "weak"),
        (base64.b64encode(bytes(range(0, 256, 8))).decode(), "weak"),  # a step of 8
    ],
)
def test_bad_keys_refused_with_a_way_out(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_key(text, "RXFLEET_VAULT_KEY")
    message = str(caught.value)
    assert needle in message and "RXFLEET_VAULT_KEY" in message
    assert "rxfleet keys generate" in message and "\n" not in message


def test_random_keys_pass_the_estimate() -> None:
    assert all(looks_random(os.urandom(32)) for _ in range(2000))


def test_secret_sealer_round_trip_and_digest() -> None:
    sealer = SecretSealer(KEY_A)
    sealed = sealer.seal("bearer-abc")
    assert "bearer-abc" not in sealed and sealer.open(sealed) == "bearer-abc"
    assert sealer.seal("bearer-abc") != sealed
    assert SecretSealer(KEY_B).open(sealed) is None  # another key: treated as missing
    assert sealer.digest("bearer-abc") == SecretSealer(KEY_A).digest("bearer-abc")
    assert sealer.digest("bearer-abc") != SecretSealer(KEY_B).digest("bearer-abc")
