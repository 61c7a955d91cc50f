"""The PHI keys from settings: keyed tokens, the vault cipher and the at-rest sealer.

Keys are 32 random bytes in base64 (``rxfleet keys generate``). The vault key
can be rotated without downtime: put the new key in ``RXFLEET_VAULT_KEY`` and
the old one in ``RXFLEET_VAULT_KEYS_OLD`` (comma-separated); new blobs are
sealed under the new key, blobs sealed under a retired key still open.
"""

from __future__ import annotations

import secrets

from pydantic import SecretStr

from config import Settings
from config.processes import PHI_KEY, VAULT_KEY
from rxfleet.claims.phi import (
    PhiTokenizer,
    SecretSealer,
    VaultCipher,
    generate_key,
    parse_key,
)
from rxfleet.errors import ConfigError

_HOW_TO = "make them with `rxfleet keys generate`"


def _key(value: SecretStr | None, name: str) -> bytes:
    if value is None:
        raise ConfigError(f"{name} must be set; {_HOW_TO}")
    return parse_key(value.get_secret_value(), name)


def require_keys(settings: Settings, names: tuple[str, ...] = (PHI_KEY, VAULT_KEY)) -> None:
    """Refuse to start without the good keys ``names`` (``config.processes`` says which
    process needs which); the two keys, where both are set, must differ."""
    given = {PHI_KEY: settings.phi_key, VAULT_KEY: settings.vault_key}
    missing = [name for name in names if not _present(given[name])]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} must be set; {_HOW_TO}")
    parsed = {name: _key(given[name], name) for name in names}
    if len(parsed) == 2 and parsed[PHI_KEY] == parsed[VAULT_KEY]:
        raise ConfigError(f"{PHI_KEY} and {VAULT_KEY} must differ; {_HOW_TO}")
    if VAULT_KEY in names:
        _old_vault_keys(settings)


def _present(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value().strip())


def _old_vault_keys(settings: Settings) -> list[bytes]:
    if settings.vault_keys_old is None:
        return []
    texts = [t for t in settings.vault_keys_old.get_secret_value().split(",") if t.strip()]
    return [
        parse_key(text, f"RXFLEET_VAULT_KEYS_OLD (entry {i})") for i, text in enumerate(texts, 1)
    ]


def tokenizer(settings: Settings) -> PhiTokenizer:
    require_keys(settings, (PHI_KEY,))
    return PhiTokenizer(_key(settings.phi_key, "RXFLEET_PHI_KEY"))


def vault(settings: Settings) -> VaultCipher:
    require_keys(settings, (VAULT_KEY,))
    return VaultCipher(_key(settings.vault_key, "RXFLEET_VAULT_KEY"), _old_vault_keys(settings))


def token_sealer(settings: Settings) -> SecretSealer:
    """Seals the portal's bearer token at rest, under its own subkey of the vault key."""
    require_keys(settings, (VAULT_KEY,))
    return SecretSealer(_key(settings.vault_key, "RXFLEET_VAULT_KEY"))


def generated_env() -> list[str]:
    """Fresh settings lines for a new fleet: both PHI keys, Flower's basic auth and the
    formulary webhook's secret (give the payer the same one)."""
    return [
        f"RXFLEET_PHI_KEY={generate_key()}",
        f"RXFLEET_VAULT_KEY={generate_key()}",
        f"RXFLEET_FLOWER_AUTH=operator:{secrets.token_urlsafe(18)}",
        f"RXFLEET_WEBHOOK_SECRET={secrets.token_urlsafe(32)}",
    ]
