"""The one settings class. Nothing else in rxfleet reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from rxfleet.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent
SAMPLE_CROSSWALK = CONFIG_DIR / "crosswalk_sample.csv"

#: Credentials the sandbox gateway accepts; the defaults when none are set.
SANDBOX_CLIENT_ID = "rxfleet-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
SANDBOX_SCOPE = "claims.submit"


class Settings(BaseSettings):
    """Everything configurable, from ``RXFLEET_*`` variables or a ``.env`` file."""

    model_config = SettingsConfigDict(env_prefix="RXFLEET_", env_file=".env", extra="ignore")

    # Infrastructure (CONTRACT section 2).
    redis_url: str | None = None
    gateway_url: str | None = None
    token_url: str | None = None
    client_id: str = SANDBOX_CLIENT_ID
    client_secret: SecretStr = SecretStr(SANDBOX_CLIENT_SECRET)
    scope: str = SANDBOX_SCOPE
    phi_key: SecretStr | None = None
    vault_key: SecretStr | None = None
    crosswalk: Path = SAMPLE_CROSSWALK
    sentry_dsn: SecretStr | None = None

    # Versioned data files.
    reject_matrix: Path = CONFIG_DIR / "reject_codes.json"
    payer_routes: Path = CONFIG_DIR / "payer_routes.json"
    sandbox_plans: Path = CONFIG_DIR / "sandbox_plans.json"

    # Fleet shape.
    batch_size: int = Field(500, ge=1, le=10_000)
    queue_cpu: str = "rxfleet.cpu"
    queue_gateway: str = "rxfleet.gateway"
    key_prefix: str = "rx"
    run_ttl_seconds: int = 7 * 24 * 3600

    # Gateway client.
    connect_timeout: float = 3.05
    read_timeout: float = 15.0
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_bundle: Path | None = None
    pool_size: int = 16

    # Token rotation.
    token_refresh_margin: float = 60.0
    token_check_interval: float = 5.0
    token_lock_timeout: float = 30.0
    token_lock_wait: float = 20.0

    # Retry policy of the submit link.
    submit_max_retries: int = 8
    backoff_base: float = 1.0
    backoff_cap: float = 120.0
    retry_after_cap: float = 900.0
    route_miss_ttl: int = 600

    # Circuit breaker, shared through Redis.
    breaker_window: int = 60
    breaker_threshold: float = 0.005
    breaker_min_requests: int = 200
    breaker_cooldown: float = 15.0
    breaker_cooldown_max: float = 300.0
    visibility_timeout: int = 3 * 3600

    def redis_url_or_raise(self) -> str:
        """The Redis URL, or a ConfigError that says how to set it."""
        if not self.redis_url:
            raise ConfigError("RXFLEET_REDIS_URL is not set (the workers need a Redis server)")
        return self.redis_url


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    global _current
    if _current is None:
        _current = Settings()  # type: ignore[call-arg]  # values come from the environment
    return _current


def configure(**overrides: Any) -> Settings:
    """Replace the process-wide settings by ones with ``overrides`` applied.

    The embedded mode starts its own Redis and gateway and points every part of
    the process at them through this; tests use it the same way.
    """
    global _current
    _current = get_settings().model_copy(update=overrides)
    return _current


def reset() -> None:
    """Forget the cached settings (tests)."""
    global _current
    _current = None
