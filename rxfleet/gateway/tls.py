"""The TLS of every connection to the PBM (token endpoint and claim endpoint): one builder.

``Tls.of(settings)`` reads ``RXFLEET_CA_BUNDLE``, ``RXFLEET_CLIENT_CERT`` and
``RXFLEET_CLIENT_KEY`` once and checks them; the requests session (the token
endpoint) takes its ``verify`` and ``cert``, the aiohttp connector (the claim
endpoint) its ``ssl_context()``, so both transports trust the same CAs and
present the same client certificate (httpx's ``create_ssl_context`` idea).
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from config import Settings
from rxfleet.errors import ConfigError


@dataclass(frozen=True)
class Tls:
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @classmethod
    def of(cls, settings: Settings) -> Tls:
        if settings.client_key is not None and settings.client_cert is None:
            raise ConfigError("RXFLEET_CLIENT_KEY is set without RXFLEET_CLIENT_CERT")
        return cls(
            str(settings.ca_bundle) if settings.ca_bundle is not None else None,
            str(settings.client_cert) if settings.client_cert is not None else None,
            str(settings.client_key) if settings.client_key is not None else None,
        )

    @property
    def verify(self) -> str | bool:
        """requests' ``verify``: the CA bundle, or the default verification."""
        return self.ca_bundle if self.ca_bundle is not None else True

    @property
    def cert(self) -> str | tuple[str, str] | None:
        """requests' ``cert``: the client certificate (and its key) for mutual TLS."""
        if self.client_cert is None:
            return None
        return (self.client_cert, self.client_key) if self.client_key else self.client_cert

    def ssl_context(self) -> ssl.SSLContext | bool:
        """aiohttp's ``ssl``: a context with the CA bundle and client certificate, or
        True (the default verification) when neither is set."""
        if self.ca_bundle is None and self.client_cert is None:
            return True
        context = ssl.create_default_context(cafile=self.ca_bundle)
        if self.client_cert is not None:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context
