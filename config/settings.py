"""The one settings class. Nothing else in rxfleet reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from rxfleet.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent
SAMPLE_CROSSWALK = CONFIG_DIR / "crosswalk_sample.csv"

#: Credentials the sandbox gateway accepts; the defaults when none are set.
SANDBOX_CLIENT_ID = "rxfleet-sandbox"
SANDBOX_CLIENT_SECRET = "sandbox-secret"
SANDBOX_SCOPE = "claims.submit"
#: Every answer of the sandbox gateway carries this header: the fleet tells the sandbox
#: apart by what it is (its credentials, this header), not by where it listens.
SANDBOX_IDENTITY_HEADER = "X-Rxfleet-Sandbox"

ENV_PREFIX = "RXFLEET_"


def _renamed(name: str, *former: str) -> AliasChoices:
    """A renamed setting's variables: ``RXFLEET_{NAME}``, then its former names (still
    read, so an older ``.env`` keeps working). ``config.reference`` lists both."""
    return AliasChoices(*(f"{ENV_PREFIX}{n.upper()}" for n in (name, *former)))


class Settings(BaseSettings):
    """Everything configurable, from ``RXFLEET_*`` variables or a ``.env`` file."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", populate_by_name=True
    )

    # Infrastructure (README "Running a fleet").
    redis_url: str | None = Field(
        default=None,
        description="Redis server of the fleet (broker, result backend, stores); "
        "unset: `rxfleet run` starts the embedded fleet",
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL, the system of record (results, audit, runs, dead letters); "
        "required with RXFLEET_REDIS_URL, started privately in embedded mode",
    )
    database_owner_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL as the owner role: `rxfleet db upgrade` (and the embedded "
        "mode) applies migrations, sets retention and grants RXFLEET_DATABASE_URL's role "
        "least privilege with it; unset: the fleet's role owns the tables (warned)",
    )
    broker_url: str | None = Field(
        default=None,
        description="the Celery broker when it is not the Redis above (e.g. amqp://... "
        "RabbitMQ, which requeues a dead consumer's messages at once); Redis stays the store",
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

    export_mode: str = Field(
        default="600",
        pattern=r"^0?[0-7]{3}$",
        description="permissions (octal) of the files the CLI writes: results, `rxfleet audit "
        "-o`; 600: the owner only (they hold claim ids, tokens, NDCs, amounts); e.g. 640",
    )
    # Formulary webhooks (`rxfleet webhooks`; docs/operations.md, "Formulary webhooks").
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="shared secret of the payer's formulary webhook (HMAC-SHA-256 of "
        "X-PBM-Signature); `rxfleet webhooks` refuses to start without it",
    )
    webhook_max_body: int = Field(
        default=1_048_576,
        ge=1024,
        description="largest formulary event body accepted, bytes (larger: 413, nothing kept)",
    )
    formulary_gap_seconds: float = Field(
        default=60.0,
        gt=0,
        description="an event stored behind a gap in the sequence waits for the missing one; "
        "after this long the gap is flagged (log line, rxfleet_formulary_waiting_seconds)",
    )
    formulary_wait_seconds: float = Field(
        default=120.0,
        gt=0,
        description="a claim whose NDC is in neither the crosswalk nor the formulary while "
        "a formulary event waits is TRANSIENT: re-checked until this long, then FATAL",
    )

    # Versioned data files.
    reject_matrix: Path = Field(
        default=CONFIG_DIR / "reject_codes.json", description="reject-code routing matrix (JSON)"
    )
    payer_routes: Path = Field(
        default=CONFIG_DIR / "payer_routes.json",
        description="X12 payer id to BIN/PCN routes (JSON)",
    )
    payer_sheet: Path = Field(
        default=CONFIG_DIR / "payer_sheet.csv",
        description="NCPDP BIN, PCN and group to plan id (CSV), for plan-level reject routing",
    )
    plan_limits: Path = Field(
        default=CONFIG_DIR / "plan_limits.json",
        description="plan limits of the cross-field rules (largest days supply per plan, "
        "cardholder person codes; JSON)",
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
        default=3600,
        description="seconds a finished run's working keys stay in Redis (the database keeps it)",
    )
    max_inflight: int = Field(
        default=20_000,
        ge=1,
        description="claims a run keeps enqueued but not yet recorded; the producer waits for "
        "room beyond it (backpressure: Redis stays the size of this window)",
    )
    retention_days: int = Field(
        default=2190,
        ge=1,
        description="days results, audit events and dead letters are kept in the database "
        "(6 years: the HIPAA documentation retention period)",
    )
    producer_lease: float = Field(
        default=15.0, description="seconds a producer's claim on its run lasts without renewal"
    )
    intake_slices: bool = Field(
        default=True,
        description="a run of one JSONL file is cut into sealed slices that the cpu workers "
        "ingest in parallel (the intake link); false: the producer ingests every record itself",
    )

    # Payer-portal sync (`rxfleet sync`).
    portal_url: str | None = Field(
        default=None,
        description="the payer portal `rxfleet sync` pulls pending claims from; "
        "unset: no portal sync",
    )
    sync_page: int = Field(
        default=500, ge=1, le=10_000,
        description="claims asked for in one pull of pending claims (one batch each)",
    )  # fmt: skip
    sync_poll: float = Field(
        default=1.0, gt=0, description="seconds between pulls while the portal has nothing pending"
    )
    sync_lease: float = Field(
        default=15.0, gt=0,
        description="seconds a sync process's hold on its portal lasts without renewal "
        "(a second sync takes over after it)",
    )  # fmt: skip
    sync_rate_reserve: int = Field(
        default=0, ge=0,
        description="portal requests kept in hand: the sync waits for X-RateLimit-Reset "
        "when X-RateLimit-Remaining falls to this",
    )  # fmt: skip
    sync_recover_seconds: float = Field(
        default=30.0, gt=0,
        description="a pulled claim neither recorded nor in Redis this long is pulled again "
        "(its Redis state was lost) under its run and position",
    )  # fmt: skip

    # Gateway client.
    connect_timeout: float = Field(default=3.05, description="gateway connect timeout, seconds")
    read_timeout: float = Field(default=15.0, description="gateway read timeout, seconds")
    client_cert: Path | None = Field(
        default=None, description="mutual-TLS client certificate (PEM)"
    )
    client_key: Path | None = Field(default=None, description="mutual-TLS client key (PEM)")
    ca_bundle: Path | None = Field(default=None, description="CA bundle to verify the gateway")
    submit_inflight: int = Field(
        default=64,
        ge=1,
        le=512,
        description="gateway requests in flight at once per submit worker process to begin "
        "with (throughput ~ in-flight / latency); from there the fleet finds the gateway's "
        "limit as it sends, up to RXFLEET_GATEWAY_INFLIGHT_MAX",
    )
    gateway_inflight_max: int = Field(
        default=1024,
        ge=1,
        le=8192,
        description="gateway requests the whole fleet keeps in flight at most: the ceiling of "
        "the limit the fleet finds (it backs off on 429 and 503 without Retry-After and on "
        "rising latency); set it to the gateway's contracted concurrency when there is one",
    )
    submit_round_seconds: float = Field(
        default=25.0, description="a submit task sends for at most this long, then hands on"
    )
    gateway_rate: float = Field(
        default=0.0,
        ge=0,
        description="claims a second the whole fleet sends the gateway at most (the payer's "
        "contracted rate; one schedule in Redis shared by every submit worker); 0: no limit",
    )

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
        default=8,
        description="submit rounds without progress before the open claims get 99; "
        "also the failed tries a claim may have before it does",
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

    # Circuit breakers, shared through Redis: authentication and gateway health.
    breaker_window: int = Field(
        default=60,
        description="both breakers' (authentication, gateway health) failure-rate window, seconds",
    )
    auth_breaker_threshold: float = Field(
        default=0.005,
        validation_alias=_renamed("auth_breaker_threshold", "breaker_threshold"),
        description="authentication breaker: opens when 401s a fresh token did not cure pass "
        "this share of requests (seed 000's 0.5% REJ_001/REJ_004 alert threshold)",
    )
    auth_breaker_min_requests: int = Field(
        default=200,
        validation_alias=_renamed("auth_breaker_min_requests", "breaker_min_requests"),
        description="requests in the window before the authentication breaker may open",
    )
    health_breaker_threshold: float = Field(
        default=0.5,
        description="gateway-health breaker: opens when transport failures and 5xx without "
        "Retry-After pass this share of requests (a lossy but working network passes)",
    )
    health_breaker_min_requests: int = Field(
        default=20, description="requests in the window before the health breaker may open"
    )
    breaker_cooldown: float = Field(
        default=15.0, description="both breakers' first open period, seconds"
    )
    breaker_cooldown_max: float = Field(
        default=300.0, description="longest open period (doubling while probes fail), seconds"
    )

    # Delivery: a dead worker costs minutes, not hours.
    visibility_timeout: int = Field(
        default=100,
        description="seconds before the Redis broker hands an unacknowledged message to "
        "another worker; must exceed countdown_max + link_time_limit + 15",
    )
    unacked_restore_interval: float = Field(
        default=10.0,
        gt=0,
        description="seconds between a worker's looks for the unacknowledged messages of a "
        "dead worker (Redis broker), to hand them out once the visibility timeout has passed",
    )
    countdown_max: float = Field(
        default=30.0, description="the longest single countdown; longer waits are taken in hops"
    )
    link_soft_time_limit: float = Field(
        default=40.0, description="a link's soft time limit, seconds"
    )
    link_time_limit: float = Field(default=50.0, description="a link's hard time limit, seconds")
    sweep_interval: float = Field(
        default=30.0, description="seconds between the beat sweeper's looks for stalled batches"
    )
    stall_seconds: float = Field(
        default=300.0, description="a batch without progress this long is re-driven by the sweeper"
    )
    max_deliveries: int = Field(
        default=5,
        ge=1,
        description="deliveries of one link message (its worker died each time) before its "
        "batch's open claims end in the dead letters with the reason poison",
    )
    beat_lease: float = Field(
        default=15.0,
        gt=0,
        description="seconds a beat's lease on scheduling lasts unrenewed (renewed every third of "
        "it): one beat schedules, any other started by mistake waits and takes over this long "
        "after the first is gone",
    )
    redis_outage: float = Field(
        default=180.0,
        description="seconds the CLI rides through a Redis outage before it gives up",
    )
    clock_skew_max: float = Field(
        default=5.0,
        gt=0,
        description="seconds this host's clock may differ from the Redis server's: a "
        "worker, beat or command further off refuses to start (what the fleet decides by "
        "time runs on Redis's clock; its logs and audit times would be off)",
    )
    database_outage: float = Field(
        default=180.0,
        ge=0,
        description="seconds the CLI waits for PostgreSQL to come back (restart, failover, "
        "read-only) before a command gives up; workers retry their link instead",
    )
    progress_interval: float = Field(
        default=10.0,
        gt=0,
        description="seconds between the CLI's progress lines when its output is not a "
        "terminal (a pipe, cron): claims terminal, rate, time left, what the fleet waits on",
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

    def export_permissions(self) -> int:
        """``export_mode`` as a mode number (``"600"``: 0o600)."""
        return int(self.export_mode, 8)

    def webhook_secret_or_raise(self) -> bytes:
        """The webhook secret, or a ConfigError that says how to set it."""
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        if len(secret) < 16:
            raise ConfigError(
                "RXFLEET_WEBHOOK_SECRET is not set or shorter than 16 characters (the "
                "formulary webhook's shared secret; `rxfleet keys generate` prints one)"
            )
        return secret.encode()

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
