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

    # Infrastructure.
    redis_url: str | None = None
    database_url: str | None = Field(
        None,
        description="PostgreSQL, the system of record (results, audit, runs, dead letters); "
        "required with RXFLEET_REDIS_URL, started privately in embedded mode",
    )
    broker_url: str | None = Field(
        None,
        description="the Celery broker when it is not the Redis above (e.g. amqp://... RabbitMQ, "
        "which requeues a dead consumer's messages at once); Redis stays the state store",
    )
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
    run_ttl_seconds: int = Field(
        3600,
        description="seconds a finished run's working keys stay in Redis (the database keeps it)",
    )
    max_inflight: int = Field(
        20_000,
        ge=1,
        description="claims a run keeps enqueued but not yet recorded; the producer waits for "
        "room beyond it (backpressure: Redis stays the size of this window)",
    )
    retention_days: int = Field(
        2190,
        ge=1,
        description="days results, audit events and dead letters are kept in the database "
        "(6 years: the HIPAA documentation retention period)",
    )
    producer_lease: float = Field(
        15.0, description="seconds a producer's claim on its run lasts without renewal"
    )

    # Gateway client.
    connect_timeout: float = 3.05
    read_timeout: float = 15.0
    client_cert: Path | None = None
    client_key: Path | None = None
    ca_bundle: Path | None = None
    submit_inflight: int = Field(
        32,
        ge=1,
        le=512,
        description="gateway requests in flight at once per submit worker process "
        "(throughput ~ in-flight / latency); the connection pool is sized to match",
    )
    submit_round_seconds: float = Field(
        25.0, description="a submit task sends for at most this long, then hands the rest on"
    )

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

    # Circuit breakers, shared through Redis: authentication and gateway health.
    breaker_window: int = 60
    breaker_threshold: float = Field(
        0.005,
        description="authentication breaker: opens when 401s a fresh token did not cure pass "
        "this share of requests (seed 000's 0.5% REJ_001/REJ_004 alert threshold)",
    )
    breaker_min_requests: int = 200
    health_breaker_threshold: float = Field(
        0.5,
        description="gateway-health breaker: opens when transport failures and 5xx without "
        "Retry-After pass this share of requests (a lossy but working network passes)",
    )
    health_breaker_min_requests: int = 20
    breaker_cooldown: float = 15.0
    breaker_cooldown_max: float = 300.0

    # Delivery: a dead worker costs minutes, not hours.
    visibility_timeout: int = Field(
        100,
        description="seconds before the Redis broker hands an unacknowledged message to "
        "another worker; must exceed countdown_max + link_time_limit + 15",
    )
    countdown_max: float = Field(
        30.0, description="the longest single countdown; longer waits are taken in hops"
    )
    link_soft_time_limit: float = 40.0
    link_time_limit: float = 50.0
    sweep_interval: float = Field(
        30.0, description="seconds between the beat sweeper's looks for stalled batches"
    )
    stall_seconds: float = Field(
        300.0, description="a batch without progress this long is re-driven by the sweeper"
    )
    redis_outage: float = Field(
        180.0,
        description="seconds the CLI and the links ride through a Redis outage before giving up",
    )

    def check_delivery(self) -> None:
        """Refuse a configuration where a held message could be redelivered early."""
        needed = self.countdown_max + self.link_time_limit + 15
        if self.visibility_timeout < needed:
            raise ConfigError(
                f"RXFLEET_VISIBILITY_TIMEOUT={self.visibility_timeout} is below "
                f"RXFLEET_COUNTDOWN_MAX + RXFLEET_LINK_TIME_LIMIT + 15 = {needed:g}: a task "
                "waiting for its countdown would be handed to a second worker"
            )
        if self.link_soft_time_limit >= self.link_time_limit:
            raise ConfigError("RXFLEET_LINK_SOFT_TIME_LIMIT must be below RXFLEET_LINK_TIME_LIMIT")

    def database_url_or_raise(self) -> str:
        if not self.database_url:
            raise ConfigError(
                "RXFLEET_DATABASE_URL is not set (PostgreSQL is the system of record)"
            )
        return self.database_url

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
