"""Production guards, checked where a fleet starts (a worker's ``worker_init``, and
the CLI when ``RXFLEET_REDIS_URL`` is set); the embedded mode is the sandbox.

Outside ``RXFLEET_SANDBOX=1`` the fleet refuses to start with:

* no client credentials, or the sandbox's (``rxfleet-sandbox`` / ``sandbox-secret``);
* no gateway or token URL;
* an ``http://`` gateway, token or portal URL, unless ``RXFLEET_ALLOW_INSECURE_GATEWAY=1``;

and always without the PHI keys the process needs (``config.processes``: the
producer both, the workers the vault key, read-only commands neither).

The sandbox is told apart by what it is, not where it listens: its credentials
are refused here, and a gateway whose answers carry the sandbox's identity header
is refused by the gateway client. A TLS (or mTLS) sidecar on 127.0.0.1 (stunnel,
Envoy, ghostunnel) in front of a real gateway is allowed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from config import Settings
from config.processes import PHI_KEY, VAULT_KEY
from config.settings import SANDBOX_CLIENT_ID, SANDBOX_CLIENT_SECRET
from rxfleet.errors import ConfigError
from rxfleet.phikeys import require_keys

_SANDBOX_HINT = "(for the sandbox gateway set RXFLEET_SANDBOX=1)"


def check_fleet(
    settings: Settings, secrets: tuple[str, ...] = (PHI_KEY, VAULT_KEY), *, gateway: bool = True
) -> None:
    """Everything a worker or producer needs before it touches the fleet, or a ConfigError:
    Redis, the ``secrets`` it needs and, where it ``gateway`` matters, the real-gateway rules."""
    settings.redis_url_or_raise()
    if secrets:
        require_keys(settings, secrets)
    if gateway and not settings.sandbox:
        check_gateway(settings)


def check_gateway(settings: Settings) -> None:
    """The real-gateway rules (outside the sandbox), or a ConfigError naming the setting."""
    if not settings.client_id or settings.client_secret is None:
        raise ConfigError(
            "RXFLEET_CLIENT_ID and RXFLEET_CLIENT_SECRET must be set (the gateway's client "
            f"credentials) {_SANDBOX_HINT}"
        )
    secret = settings.client_secret.get_secret_value()
    if settings.client_id == SANDBOX_CLIENT_ID or secret == SANDBOX_CLIENT_SECRET:
        raise ConfigError(
            "RXFLEET_CLIENT_ID/RXFLEET_CLIENT_SECRET are the sandbox's credentials, "
            f"refused for a real gateway {_SANDBOX_HINT}"
        )
    for name, url in (
        ("RXFLEET_GATEWAY_URL", settings.gateway_url),
        ("RXFLEET_TOKEN_URL", settings.token_url),
    ):
        _check_url(name, url, settings.allow_insecure_gateway)
    if settings.portal_url:
        _check_url("RXFLEET_PORTAL_URL", settings.portal_url, settings.allow_insecure_gateway)


def _check_url(name: str, url: str | None, allow_insecure: bool) -> None:
    if not url:
        raise ConfigError(f"{name} must be set (the PBM gateway) {_SANDBOX_HINT}")
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ConfigError(f"{name} is not an http(s) URL")
    if parts.scheme == "http" and not allow_insecure:
        raise ConfigError(
            f"{name} is plain http://; use https:// "
            "(or set RXFLEET_ALLOW_INSECURE_GATEWAY=1 for a trusted network) " + _SANDBOX_HINT
        )
