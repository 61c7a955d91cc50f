"""Beat: keep the fleet's one portal token fresh, rotated under the lock."""

from __future__ import annotations

from config import get_settings
from rxfleet import context
from workers.app import app


@app.task(ignore_result=True, send_events=False)
def refresh_token() -> bool:
    """Rotate the token when less than its margin is left (no result, no task events)."""
    margin = get_settings().token_refresh_margin
    return context.tokens().refresh_if_due(context.gateway_client(), margin)
