"""PHI handling: the keys, keyed tokens and the encrypted vault's sealing.

* Keys are 32 random bytes, written as base64 (``rxfleet keys generate`` prints
  fresh ones). ``parse_key`` refuses anything shorter, longer or visibly not
  random. Every use gets its own subkey, derived with HKDF-SHA-256 under a
  purpose label, so one key never serves two algorithms.
* ``PhiTokenizer`` turns a PHI value into a keyed token (HMAC-SHA-256): the same
  value gives the same token across runs and batches under one key, so results
  can be reconciled, but a token cannot be reversed or brute-forced without the
  key (plain hashes of member IDs can).
* ``VaultCipher`` seals a claim's PHI fields with AES-256-GCM for the vault in
  Redis. The associated data binds a sealed blob to its run and record, so a
  blob moved to another claim fails to open. Each blob starts with the id of
  the key that sealed it (``kid.`` then base64); retired keys still open their
  blobs, so the vault key can be rotated without downtime.
* ``SecretSealer`` seals one short secret at rest (the portal's bearer token).

Nothing here logs or returns a raw value inside an error message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rxfleet.errors import ConfigError

TOKEN_PREFIX = "pt_"
KEY_BYTES = 32
#: 32 random bytes have about 30 distinct values; fewer than this is not random.
MIN_DISTINCT_BYTES = 16
#: Consecutive bytes a constant step apart (0, 1, 2, ...): in random bytes a run of
#: this length has odds of about 2**-27 a key; in a key typed or counted by hand, it is the key.
MAX_STEP_RUN = 6
_NONCE_BYTES = 12
_KID = re.compile(r"[0-9a-f]{8}")  # what key_id makes
_HOW_TO = "make one with `rxfleet keys generate`"

#: HKDF purpose labels: one subkey per use of a key.
PURPOSE_VAULT = "vault-aes-gcm"
PURPOSE_KEY_ID = "vault-key-id"
PURPOSE_PHI_TOKEN = "phi-token-hmac"
PURPOSE_PORTAL_TOKEN = "portal-token-aes-gcm"


def generate_key() -> str:
    """A fresh key: 32 random bytes, urlsafe base64."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def parse_key(text: str, name: str) -> bytes:
    """The 32 bytes of a base64 key (standard or urlsafe alphabet), or a ConfigError."""
    cleaned = text.strip()
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        alphabet = padded.replace("-", "+").replace("_", "/")
        raw = base64.b64decode(alphabet, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != KEY_BYTES:
        raise ConfigError(f"{name} must be {KEY_BYTES} random bytes in base64; {_HOW_TO}")
    if not looks_random(raw):
        raise ConfigError(f"{name} is weak (not random bytes); {_HOW_TO}")
    return raw


def looks_random(raw: bytes) -> bool:
    """A cheap estimate that ``raw`` came from a random source, not a person: enough
    distinct bytes, not all printable ASCII (a passphrase in base64: odds about
    2**-56 for random bytes), no long run of bytes a constant step apart."""
    if len(set(raw)) < MIN_DISTINCT_BYTES:
        return False
    if all(0x20 <= b < 0x7F for b in raw):
        return False
    return _longest_step_run(raw) < MAX_STEP_RUN


def _longest_step_run(raw: bytes) -> int:
    longest = run = 1
    for i in range(2, len(raw)):
        same = (raw[i] - raw[i - 1]) % 256 == (raw[i - 1] - raw[i - 2]) % 256
        run = run + 1 if same else 1
        longest = max(longest, run)
    return longest + 1


def derive(key: bytes, purpose: str) -> bytes:
    """A 32-byte subkey of ``key`` for one ``purpose`` (HKDF-SHA-256)."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"rxfleet/" + purpose.encode()
    )
    return hkdf.derive(key)


def key_id(key: bytes) -> str:
    """The public id of a vault key: 8 hex digits, from its own HKDF subkey."""
    return hashlib.sha256(derive(key, PURPOSE_KEY_ID)).hexdigest()[:8]


def _check_length(key: bytes, what: str) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"the {what} key must be {KEY_BYTES} bytes")


class PhiTokenizer:
    """Keyed, deterministic tokens for PHI values."""

    def __init__(self, key: bytes) -> None:
        _check_length(key, "PHI")
        self._key = derive(key, PURPOSE_PHI_TOKEN)
        self.kid = key_id(key)  # public: tells two processes' PHI keys apart

    def token(self, value: str, *, kind: str = "cardholder_id") -> str:
        """The token of ``value`` (whitespace-trimmed, case kept)."""
        message = f"{kind}\x1f{value.strip()}".encode()
        digest = hmac.new(self._key, message, hashlib.sha256).hexdigest()
        return TOKEN_PREFIX + digest[:32]

    def person_token(
        self,
        cardholder_id: str,
        *,
        person_code: str | None = None,
        relationship: str | None = None,
        date_of_birth: str | None = None,
    ) -> str:
        """The token of one person on a card (docs/formats.md, "patient_token").

        A cardholder's dependents share the cardholder id, so the id alone names a
        family. The person is the cardholder id plus the person code (303-C3, the
        payer's own number for each person on the card); without one, plus the
        relationship (306-C6) and date of birth (304-C4), which tell a spouse from a
        child and twins by neither. With none of them: the cardholder id alone, the
        token of earlier releases.
        """
        if person_code and person_code.strip():
            return self.token(f"{cardholder_id.strip()}\x1f{person_code.strip()}", kind="person")
        if relationship or date_of_birth:
            person = f"{cardholder_id.strip()}\x1f{relationship or ''}\x1f{date_of_birth or ''}"
            return self.token(person, kind="person-by-birth")
        return self.token(cardholder_id)

    def claim_id(self, prefix: str, parts: Iterable[str]) -> str:
        """A claim id keyed like the tokens: ``{prefix}-`` and 32 hex digits of the HMAC
        of ``parts``. For ids made of identifiers that must not appear in clear (an X12
        CLM01, a cardholder id): stable under one key, irreversible without it."""
        message = "\x1f".join(parts).encode("utf-8", errors="surrogateescape")
        digest = hmac.new(self._key, b"claim-id\x1f" + message, hashlib.sha256).hexdigest()
        return f"{prefix}-{digest[:32]}"

    def submission_key(self, claim_id: str, content: Mapping[str, str]) -> str:
        """The Idempotency-Key of one submission: ``{claim_id}~`` and 16 hex digits of
        the HMAC of its canonical content (every field, PHI included, and the
        transaction code; docs/protocol.md). Keyed, since the content holds PHI: a
        plain hash would let anyone confirm a guessed value. The same content gives
        the same key on every try and every run; any change gives another."""
        canonical = "\x1e".join(f"{name}\x1f{content[name]}" for name in sorted(content))
        message = canonical.encode("utf-8", errors="surrogateescape")
        digest = hmac.new(self._key, b"submission\x1f" + message, hashlib.sha256).hexdigest()
        return f"{claim_id}{SUBMISSION_KEY_SEPARATOR}{digest[:16]}"


#: Between the claim id and the content digest of a submission's Idempotency-Key
#: (not a claim-id character, so the claim id is everything before it).
SUBMISSION_KEY_SEPARATOR = "~"


class VaultCipher:
    """AES-256-GCM sealing of a claim's PHI fields, under a current and retired keys."""

    def __init__(self, key: bytes, old: Iterable[bytes] = ()) -> None:
        _check_length(key, "vault")
        self.kid = key_id(key)
        self._current = AESGCM(derive(key, PURPOSE_VAULT))
        self._by_kid = {self.kid: self._current}
        for retired in old:
            _check_length(retired, "retired vault")
            self._by_kid.setdefault(key_id(retired), AESGCM(derive(retired, PURPOSE_VAULT)))

    def seal(self, fields: Mapping[str, str | None], *, context: str) -> str:
        """Encrypt ``fields`` for the record named by ``context``: ``kid.base64``."""
        return self.seal_bytes(json.dumps(dict(fields), separators=(",", ":")).encode(),
                               context=context)  # fmt: skip

    def seal_bytes(self, data: bytes, *, context: str) -> str:
        """Encrypt raw bytes (PHI fields as JSON; a slice of an input file, PHI and all)
        for ``context``: ``kid.base64``."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._current.encrypt(nonce, data, context.encode())
        return f"{self.kid}.{base64.b64encode(sealed).decode('ascii')}"

    def lacks(self, blob: str) -> str | None:
        """The key id ``blob`` was sealed under when this cipher has no such key, else
        None (a blob that is not one says nothing here: ``open`` refuses it)."""
        kid, dot, _ = blob.partition(".")
        return kid if dot and kid not in self._by_kid and _KID.fullmatch(kid) else None

    def open(self, blob: str, *, context: str) -> dict[str, str | None]:
        """Decrypt a blob sealed for ``context``; ValueError if it is not one."""
        opened: dict[str, str | None] = json.loads(self.open_bytes(blob, context=context))
        return opened

    def open_bytes(self, blob: str, *, context: str) -> bytes:
        """Decrypt what :meth:`seal_bytes` sealed for ``context``; ValueError if it is not one."""
        kid, dot, body = blob.partition(".")
        aead = self._by_kid.get(kid) if dot else None
        if aead is None:
            raise ValueError(
                "vault blob does not open: sealed under an unknown key id; "
                "list retired keys in RXFLEET_VAULT_KEYS_OLD"
            )
        try:
            raw = base64.b64decode(body, validate=True)
            return aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], context.encode())
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ValueError("vault blob does not open under this key and context") from exc


class SecretSealer:
    """AES-256-GCM for one secret at rest (the bearer token), under a subkey of the vault key.

    ``digest`` is a keyed fingerprint of the secret, for compare-and-delete
    without opening (sealing is randomized).
    """

    def __init__(self, key: bytes, purpose: str = PURPOSE_PORTAL_TOKEN) -> None:
        _check_length(key, "vault")
        self._aead = AESGCM(derive(key, purpose))
        self._mac = derive(key, purpose + "/digest")

    def seal(self, secret: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, secret.encode(), None)).decode()

    def open(self, sealed: str) -> str | None:
        """The secret, or None when it was sealed under another key (or is not sealed)."""
        try:
            raw = base64.b64decode(sealed, validate=True)
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None).decode()
        except (InvalidTag, binascii.Error, ValueError):
            return None

    def digest(self, secret: str) -> str:
        return hmac.new(self._mac, secret.encode(), hashlib.sha256).hexdigest()
