"""Beat: keep the fleet's one portal token fresh, rotated under the lock."""

from __future__ import annotations

from config import get_settings
from rxfleet import context
from workers.app import app


@app.task(ignore_result=True)
def refresh_token() -> bool:
    margin = get_settings().token_refresh_margin
    return context.tokens().refresh_if_due(context.gateway_client(), margin)
