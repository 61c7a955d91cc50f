"""The client's Session: pool, no urllib3 retries, timeouts and TLS from Settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from requests.adapters import HTTPAdapter

from config.settings import Settings
from rxfleet.errors import ConfigError
from rxfleet.gateway.client import GatewayClient, build_session


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "gateway_url": "https://pbm.example/",
        "token_url": "https://pbm.example/oauth2/token",
        "submit_inflight": 7,
        "connect_timeout": 1.5,
        "read_timeout": 9.0,
        "client_cert": None,
        "client_key": None,
        "ca_bundle": None,
    }
    return Settings(**{**values, **overrides})


def test_pool_and_no_retries() -> None:
    session = build_session(settings())
    try:
        adapter = session.get_adapter("https://pbm.example/v1/claims")
        assert isinstance(adapter, HTTPAdapter)
        assert adapter._pool_maxsize == 7  # type: ignore[attr-defined]
        assert adapter.max_retries.total == 0
        assert adapter.max_retries.read is False
        assert session.trust_env is False
        assert session.verify is True
        assert session.cert is None
    finally:
        session.close()


def test_mtls_and_ca_bundle(tmp_path: Path) -> None:
    cert, key, ca = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    session = build_session(settings(client_cert=cert, client_key=key, ca_bundle=ca))
    try:
        assert session.cert == (str(cert), str(key))
        assert session.verify == str(ca)
    finally:
        session.close()


def test_key_without_cert_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CLIENT_KEY"):
        build_session(settings(client_key=tmp_path / "k.pem"))


def test_timeouts_come_from_settings() -> None:
    with GatewayClient(settings()) as client:
        assert client._timeout == (1.5, 9.0)
