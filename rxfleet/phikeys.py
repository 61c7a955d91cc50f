"""The PHI keys from settings: keyed tokens and the vault cipher."""

from __future__ import annotations

from config import Settings
from rxfleet.claims.phi import PhiTokenizer, VaultCipher, key_bytes
from rxfleet.errors import ConfigError


def require_keys(settings: Settings) -> None:
    """Refuse to start without both PHI keys (the embedded mode makes its own)."""
    missing = [
        name
        for name, value in (
            ("RXFLEET_PHI_KEY", settings.phi_key),
            ("RXFLEET_VAULT_KEY", settings.vault_key),
        )
        if value is None or len(value.get_secret_value()) < 16
    ]
    if missing:
        raise ConfigError(f"{' and '.join(missing)} must be set (at least 16 characters)")


def tokenizer(settings: Settings) -> PhiTokenizer:
    require_keys(settings)
    assert settings.phi_key is not None
    return PhiTokenizer(key_bytes(settings.phi_key.get_secret_value()))


def vault(settings: Settings) -> VaultCipher:
    require_keys(settings)
    assert settings.vault_key is not None
    return VaultCipher(key_bytes(settings.vault_key.get_secret_value()))
