"""Helpers shared by the gateway integration tests (imported by name: keep it unique)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from config.settings import Settings
from rxfleet.gateway.sandbox.server import SandboxGateway

#: Distinctive PHI values: no response, stat, log line or error may contain them.
PHI_VALUES = {
    "cardholder_id": "ZPHI4417X9",
    "patient_first_name": "Philomena",
    "patient_last_name": "Quackenbush",
    "date_of_birth": "1961-07-04",
}

ClaimFactory = Callable[..., dict[str, Any]]


def make_settings(gateway: SandboxGateway, **overrides: Any) -> Settings:
    """Settings pointing at ``gateway``, built directly (no environment needed)."""
    values: dict[str, Any] = {
        "gateway_url": gateway.url,
        "token_url": gateway.token_url,
        "client_id": "rxfleet-sandbox",
        "client_secret": "sandbox-secret",
        "scope": "claims.submit",
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "submit_inflight": 4,
        "client_cert": None,
        "client_key": None,
        "ca_bundle": None,
    }
    values.update(overrides)
    return Settings(**values)


def assert_no_phi(text: str) -> None:
    for name, value in PHI_VALUES.items():
        assert value not in text, f"{name} leaked"
