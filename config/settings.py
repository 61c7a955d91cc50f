"""The one settings class. Nothing else in rxfleet reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

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

    # Infrastructure (README "Running a fleet").
    redis_url: str | None = Field(
        default=None,
        description="Redis server of the fleet (broker, result backend, stores); "
        "unset: `rxfleet run` starts the embedded fleet",
    )
    gateway_url: str | None = Field(
        default=None,
        description="base URL of the PBM gateway (unset in embedded mode: the sandbox)",
    )
    token_url: str | None = Field(default=None, description="OAuth2 token endpoint of the gateway")
    client_id: str | None = Field(
        default=None,
        description="gateway client id; required outside the sandbox "
        "(the sandbox's own is used in embedded mode and with RXFLEET_SANDBOX=1)",
    )
    client_secret: SecretStr | None = Field(
        default=None, description="gateway client secret; required outside the sandbox, like the id"
    )
    scope: str = Field(default=SANDBOX_SCOPE, description="OAuth2 scope asked for with the token")
    sandbox: bool = Field(
        default=False,
        description="the fleet talks to the sandbox gateway: its credentials, a local "
        "and plain-HTTP gateway are allowed (production guards off)",
    )
    allow_insecure_gateway: bool = Field(
        default=False, description="allow an http:// gateway or token URL outside the sandbox"
    )
    phi_key: SecretStr | None = Field(
        default=None,
        description="PHI token key: 32 random bytes, base64 (`rxfleet keys generate`); "
        "HMAC subkey derived with HKDF",
    )
    vault_key: SecretStr | None = Field(
        default=None,
        description="vault key: 32 random bytes, base64, not the PHI key; seals PHI "
        "(AES-256-GCM) and the bearer token at rest, HKDF subkeys per purpose",
    )
    vault_keys_old: SecretStr | None = Field(
        default=None,
        description="retired vault keys, comma-separated: blobs sealed under them still "
        "open (key rotation without downtime); new blobs use RXFLEET_VAULT_KEY",
    )
    crosswalk: Path = Field(
        default=SAMPLE_CROSSWALK,
        description="NDC-11 to GPI-14 crosswalk CSV (README, Input formats)",
    )
    sentry_dsn: SecretStr | None = Field(
        default=None, description="Sentry DSN; unset: no Sentry (events are PHI-scrubbed)"
    )

    # Logging and operations.
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text`, or `json`: JSON lines with run, batch, claim and trace ids",
    )
    flower_auth: SecretStr | None = Field(
        default=None,
        description="Flower's basic auth, `user:password` (the Procfile's flower line "
        "refuses to start without it)",
    )

    # Versioned data files.
    reject_matrix: Path = Field(
        default=CONFIG_DIR / "reject_codes.json", description="reject-code routing matrix (JSON)"
    )
    payer_routes: Path = Field(
        default=CONFIG_DIR / "payer_routes.json",
        description="X12 payer id to BIN/PCN routes (JSON)",
    )
    sandbox_plans: Path = Field(
        default=CONFIG_DIR / "sandbox_plans.json",
        description="plans the sandbox gateway adjudicates",
    )

    # Fleet shape.
    batch_size: int = Field(
        default=500, ge=1, le=10_000, description="claims per batch (one chain)"
    )
    queue_cpu: str = Field(default="rxfleet.cpu", description="queue of the CPU links")
    queue_gateway: str = Field(default="rxfleet.gateway", description="queue of the submit link")
    key_prefix: str = Field(default="rx", description="prefix of every Redis key of the stores")
    run_ttl_seconds: int = Field(
        default=7 * 24 * 3600, description="how long a run's records and results stay in Redis"
    )

    # Gateway client.
    connect_timeout: float = Field(default=3.05, description="gateway connect timeout, seconds")
    read_timeout: float = Field(default=15.0, description="gateway read timeout, seconds")
    client_cert: Path | None = Field(
        default=None, description="mutual-TLS client certificate (PEM)"
    )
    client_key: Path | None = Field(default=None, description="mutual-TLS client key (PEM)")
    ca_bundle: Path | None = Field(default=None, description="CA bundle to verify the gateway")
    pool_size: int = Field(default=16, description="HTTP connections kept per worker process")

    # Token rotation.
    token_refresh_margin: float = Field(
        default=60.0, description="rotate the portal token this many seconds before expiry"
    )
    token_check_interval: float | None = Field(
        default=None,
        description="beat's token check period, seconds; unset: min(token_refresh_margin / 2, 30)",
    )
    token_lock_timeout: float = Field(
        default=30.0, description="token rotation lock timeout, seconds"
    )
    token_lock_wait: float = Field(
        default=20.0, description="longest wait for the rotation lock, seconds"
    )

    # Retry policy of the submit link.
    submit_max_retries: int = Field(
        default=8, description="submit rounds without progress before 99"
    )
    backoff_base: float = Field(
        default=1.0, description="first backoff step, seconds (full jitter)"
    )
    backoff_cap: float = Field(default=120.0, description="longest backoff, seconds")
    retry_after_cap: float = Field(
        default=900.0, description="longest Retry-After honoured, seconds"
    )
    route_miss_ttl: int = Field(
        default=600, description="how long an unknown BIN/PCN (404) is remembered, seconds"
    )

    # Circuit breaker, shared through Redis.
    breaker_window: int = Field(default=60, description="breaker's failure-rate window, seconds")
    breaker_threshold: float = Field(
        default=0.005, description="failure rate over the window that opens the breaker"
    )
    breaker_min_requests: int = Field(
        default=200, description="requests in the window before the breaker may open"
    )
    breaker_cooldown: float = Field(default=15.0, description="first open period, seconds")
    breaker_cooldown_max: float = Field(
        default=300.0, description="longest open period (doubling while probes fail), seconds"
    )
    visibility_timeout: int = Field(
        default=3 * 3600,
        description="broker visibility timeout, seconds (above the longest countdown)",
    )

    def token_check_seconds(self) -> float:
        """Beat's token check period: as set, else min(margin / 2, 30 s)."""
        if self.token_check_interval is not None:
            return self.token_check_interval
        return max(1.0, min(self.token_refresh_margin / 2, 30.0))

    def credentials(self) -> tuple[str, str]:
        """The gateway client credentials; the sandbox's own only with RXFLEET_SANDBOX=1."""
        if self.client_id and self.client_secret is not None:
            return self.client_id, self.client_secret.get_secret_value()
        if self.sandbox:
            return self.client_id or SANDBOX_CLIENT_ID, (
                self.client_secret.get_secret_value()
                if self.client_secret is not None
                else SANDBOX_CLIENT_SECRET
            )
        raise ConfigError(
            "RXFLEET_CLIENT_ID and RXFLEET_CLIENT_SECRET must be set (the gateway's client "
            "credentials); for the sandbox gateway set RXFLEET_SANDBOX=1"
        )

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
        _current = Settings()  # values come from the environment
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
