"""Beat: keep the fleet's one portal token fresh, rotated under the lock."""

from __future__ import annotations

from config import get_settings
from rxfleet import context
from tasks.submit import gateway_client
from workers.app import app


@app.task(name="tasks.token.refresh_token", ignore_result=True)
def refresh_token() -> bool:
    settings = get_settings()
    return context.tokens().refresh_if_due(gateway_client(), settings.token_refresh_margin)
