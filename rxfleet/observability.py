"""Logging and Sentry, both PHI-safe.

Sentry is initialised without default PII, without local variables in frames
and without request bodies; ``scrub_event`` removes anything that could carry a
claim (extra data, breadcrumb data, messages of PHI-bearing fields) before an
event leaves the process.
"""

from __future__ import annotations

from typing import Any

from config import Settings


def init_sentry(settings: Settings, transport: Any = None) -> bool:
    """Start Sentry when a DSN is set; True when started (``transport``: a test seam)."""
    if settings.sentry_dsn is None:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration

    off = {"mode": "off"}
    # Collect nothing that can carry a claim: no user, cookies, headers (the
    # bearer token), bodies, query strings, queue payloads or frame variables.
    collection: Any = {
        "user_info": False,
        "cookies": off,
        "http_headers": {"request": off},
        "http_bodies": [],
        "url_query_params": off,
        "database_query_data": False,
        "queues": False,
        "stack_frame_variables": False,
    }
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        data_collection=collection,
        include_local_variables=False,
        max_request_body_size="never",
        integrations=[CeleryIntegration()],
        before_send=scrub_event,  # type: ignore[arg-type]
        before_breadcrumb=scrub_breadcrumb,
        transport=transport,
    )
    return True


#: What an event may keep: machine facts and Celery ids, never claim data.
KEPT_CONTEXTS = frozenset({"os", "runtime", "trace", "device"})
KEPT_TAGS = frozenset({"celery_task_id", "celery_task_name", "celery_task", "run_id", "link"})


def scrub_event(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    """Keep only what cannot carry a claim (an allowlist: new fields stay out)."""
    for key in ("extra", "request", "user", "modules"):
        event.pop(key, None)
    contexts = event.get("contexts") or {}
    event["contexts"] = {k: v for k, v in contexts.items() if k in KEPT_CONTEXTS}
    tags = event.get("tags") or {}
    event["tags"] = {k: v for k, v in tags.items() if k in KEPT_TAGS}
    for exception in (event.get("exception") or {}).get("values", []):
        for frame in (exception.get("stacktrace") or {}).get("frames", []):
            frame.pop("vars", None)
    for crumb in (event.get("breadcrumbs") or {}).get("values", []):
        crumb.pop("data", None)
    return event


def scrub_breadcrumb(crumb: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    crumb.pop("data", None)
    return crumb
