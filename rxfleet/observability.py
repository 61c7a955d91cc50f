"""Logging and Sentry, both PHI-safe.

Sentry is initialised without default PII, without local variables in frames
and without request bodies; ``scrub_event`` removes anything that could carry a
claim (extra data, breadcrumb data, messages of PHI-bearing fields) before an
event leaves the process.
"""

from __future__ import annotations

import logging
from typing import Any

from config import Settings
from rxclaims.readers.base import PHI_FIELDS

_SCRUBBED = "[scrubbed]"


def init_sentry(settings: Settings) -> bool:
    """Start Sentry when a DSN is set; True when started."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration

    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        integrations=[CeleryIntegration()],
        before_send=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,
    )
    return True


def scrub_event(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    """Drop every place a claim could hide in a Sentry event."""
    event.pop("extra", None)
    event.pop("request", None)
    event.pop("user", None)
    for key in ("contexts",):
        contexts = event.get(key) or {}
        contexts.pop("celery_job", None)
        contexts.pop("celery", None)
    for exception in (event.get("exception") or {}).get("values", []):
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    _scrub_mapping(event.get("tags") or {})
    return event


def scrub_breadcrumb(crumb: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    crumb.pop("data", None)
    return crumb


def _scrub_mapping(mapping: dict[str, Any]) -> None:
    for name in PHI_FIELDS:
        if name in mapping:
            mapping[name] = _SCRUBBED


def setup_logging(level: int | str = logging.INFO) -> None:
    """Plain, line-oriented logs. rxfleet logs ids and counts, never claim fields."""
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=False
    )
