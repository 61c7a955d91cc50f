"""The formulary webhook's signature: ``X-PBM-Signature: t=<unix seconds>,v1=<hex>``.

``v1`` is the hex HMAC-SHA-256 of ``"<t>.<raw body>"`` under the shared webhook
secret. ``sign`` makes the header (the sandbox publisher, the tests, the bench);
``verify`` checks it with a constant-time compare and the timestamp within
``WINDOW_SECONDS`` of now either way, raising ``SignatureRefused`` with a reason
that quotes nothing of the header or the body.
"""

from __future__ import annotations

import hashlib
import hmac
import time

HEADER = "X-PBM-Signature"
#: How far the signature's timestamp may be from now, either way, in seconds.
WINDOW_SECONDS = 300
_MAX_HEADER = 512


class SignatureRefused(ValueError):
    """A missing, malformed, wrong or stale signature; ``reason`` is a short slug."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"signature refused: {reason}")
        self.reason = reason


def digest(secret: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int | None = None) -> str:
    """The header value for ``body`` signed at ``timestamp`` (default: now)."""
    at = int(time.time()) if timestamp is None else timestamp
    return f"t={at},v1={digest(secret, at, body)}"


def verify(secret: bytes, header: str | None, body: bytes, now: float | None = None) -> int:
    """The signature's timestamp when ``header`` signs ``body``; else ``SignatureRefused``."""
    timestamp, signatures = _parse(header)
    if abs((time.time() if now is None else now) - timestamp) > WINDOW_SECONDS:
        raise SignatureRefused("stale")
    expected = digest(secret, timestamp, body).encode()
    # Every v1 is compared (a payer rotating its secret sends two), each in constant time.
    matched = [hmac.compare_digest(expected, s.encode()) for s in signatures]
    if not any(matched):
        raise SignatureRefused("mismatch")
    return timestamp


def _parse(header: str | None) -> tuple[int, list[str]]:
    if not header:
        raise SignatureRefused("missing")
    if len(header) > _MAX_HEADER or not header.isascii():
        raise SignatureRefused("malformed")
    timestamps, signatures = [], []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not signatures:
        raise SignatureRefused("malformed")
    return int(timestamps[0]), signatures
