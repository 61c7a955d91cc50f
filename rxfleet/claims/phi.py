"""PHI handling: keyed tokens and the encrypted vault's sealing.

* ``PhiTokenizer`` turns a PHI value into a keyed token (HMAC-SHA-256): the same
  value gives the same token across runs and batches under one key, so results
  can be reconciled, but a token cannot be reversed or brute-forced without the
  key (plain hashes of member IDs can).
* ``VaultCipher`` seals a claim's PHI fields with AES-256-GCM for the vault in
  Redis. The associated data binds a sealed blob to its run and record, so a
  blob moved to another claim fails to open.

Nothing here logs or returns a raw value inside an error message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TOKEN_PREFIX = "pt_"
_NONCE_BYTES = 12


class PhiTokenizer:
    """Keyed, deterministic tokens for PHI values."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the PHI key must be at least 16 bytes")
        self._key = key

    def token(self, value: str, *, kind: str = "cardholder_id") -> str:
        """The token of ``value`` (whitespace-trimmed, case kept)."""
        message = f"{kind}\x1f{value.strip()}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return TOKEN_PREFIX + digest[:32]


class VaultCipher:
    """AES-256-GCM sealing of a claim's PHI fields."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the vault key must be at least 16 bytes")
        self._aead = AESGCM(hashlib.sha256(b"rxfleet-vault\x00" + key).digest())

    def seal(self, fields: Mapping[str, str | None], *, context: str) -> str:
        """Encrypt ``fields`` for the record named by ``context``."""
        nonce = os.urandom(_NONCE_BYTES)
        plain = json.dumps(dict(fields), separators=(",", ":")).encode()
        sealed = nonce + self._aead.encrypt(nonce, plain, context.encode())
        return base64.b64encode(sealed).decode("ascii")

    def open(self, blob: str, *, context: str) -> dict[str, str | None]:
        """Decrypt a blob sealed for ``context``; ValueError if it is not one."""
        raw = base64.b64decode(blob)
        try:
            plain = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except InvalidTag as exc:
            raise ValueError("vault blob does not open under this key and context") from exc
        opened: dict[str, str | None] = json.loads(plain)
        return opened


def key_bytes(secret: str) -> bytes:
    """Key material from a configured secret string."""
    return secret.encode("utf-8")
