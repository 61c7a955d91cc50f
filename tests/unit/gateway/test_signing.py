"""The formulary webhook's signature: HMAC-SHA-256 of "<t>.<body>", 300 s either way."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from rxfleet.gateway.signing import WINDOW_SECONDS, SignatureRefused, sign, verify

SECRET = b"webhook-secret-for-tests-0123456789"
BODY = b'{"event_id":"e1","sequence":1}'
NOW = 1_800_000_000


def test_a_signed_body_verifies_and_the_digest_is_the_contracts() -> None:
    header = sign(SECRET, BODY, NOW)
    expected = hmac.new(SECRET, f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify(SECRET, header, BODY, now=NOW) == NOW


@pytest.mark.parametrize(
    ("header", "body", "reason"),
    [
        (None, BODY, "missing"),
        ("", BODY, "missing"),
        ("v1=abc", BODY, "malformed"),
        (f"t={NOW}", BODY, "malformed"),
        (f"t=soon,v1={'0' * 64}", BODY, "malformed"),
        (f"t={NOW},t={NOW},v1={'0' * 64}", BODY, "malformed"),
        ("t=1," + "v1=" + "a" * 600, BODY, "malformed"),
        (sign(SECRET, BODY, NOW), BODY + b" ", "mismatch"),  # the body changed
        (sign(b"another-secret-entirely-000000", BODY, NOW), BODY, "mismatch"),  # forged
        (sign(SECRET, BODY, NOW).replace(f"t={NOW}", f"t={NOW + 1}"), BODY, "mismatch"),
        (sign(SECRET, BODY, NOW - WINDOW_SECONDS - 1), BODY, "stale"),
        (sign(SECRET, BODY, NOW + WINDOW_SECONDS + 1), BODY, "stale"),
    ],
)
def test_a_bad_signature_is_refused_with_its_reason(
    header: str | None, body: bytes, reason: str
) -> None:
    with pytest.raises(SignatureRefused) as refused:
        verify(SECRET, header, body, now=NOW)
    assert refused.value.reason == reason
    assert SECRET.decode() not in str(refused.value)


def test_the_window_edges_are_inside() -> None:
    for at in (NOW - WINDOW_SECONDS, NOW + WINDOW_SECONDS):
        assert verify(SECRET, sign(SECRET, BODY, at), BODY, now=NOW) == at


def test_any_of_two_signatures_may_match_during_a_secret_rotation() -> None:
    old = sign(b"the-old-secret-of-the-payer-0000", BODY, NOW).split(",")[1]
    header = f"{sign(SECRET, BODY, NOW)},{old}"
    assert verify(SECRET, header, BODY, now=NOW) == NOW
