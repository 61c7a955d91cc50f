"""Logging and Sentry, both PHI-safe.

Sentry is initialised without default PII, without local variables in frames
and without request bodies; ``scrub_event`` removes anything that could carry a
claim (extra data, breadcrumb data and messages, exception values, log messages,
frames' variables and source lines) before an event leaves the process.
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


#: What a stack frame may keep: where it is, never what it held or its source text.
KEPT_FRAME_KEYS = frozenset({"function", "module", "lineno", "filename", "in_app"})
WITHHELD = "[withheld]"


def scrub_event(event: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any]:
    """Keep only what cannot carry a claim (an allowlist: new fields stay out).

    Exception text is never trusted: exception values, log messages (with their
    parameters) and breadcrumb messages are withheld; exception types and
    frames' function, module, file and line stay, so events still group.
    """
    for key in ("extra", "request", "user", "modules", "message"):
        event.pop(key, None)
    contexts = event.get("contexts") or {}
    event["contexts"] = {k: v for k, v in contexts.items() if k in KEPT_CONTEXTS}
    tags = event.get("tags") or {}
    event["tags"] = {k: v for k, v in tags.items() if k in KEPT_TAGS}
    if "logentry" in event:
        event["logentry"] = {"message": WITHHELD}
    for exception in (event.get("exception") or {}).get("values", []):
        if exception.get("value"):
            exception["value"] = WITHHELD
        _scrub_frames(exception.get("stacktrace"))
    for thread in (event.get("threads") or {}).get("values", []):
        _scrub_frames(thread.get("stacktrace"))
    for crumb in (event.get("breadcrumbs") or {}).get("values", []):
        _scrub_crumb(crumb)
    return event


def _scrub_frames(stacktrace: dict[str, Any] | None) -> None:
    if not stacktrace:
        return
    stacktrace["frames"] = [
        {k: v for k, v in frame.items() if k in KEPT_FRAME_KEYS}
        for frame in stacktrace.get("frames") or []
    ]


def _scrub_crumb(crumb: dict[str, Any]) -> None:
    crumb.pop("data", None)
    if crumb.get("message"):
        crumb["message"] = WITHHELD


def scrub_breadcrumb(crumb: dict[str, Any], _hint: dict[str, Any]) -> dict[str, Any] | None:
    _scrub_crumb(crumb)
    return crumb
