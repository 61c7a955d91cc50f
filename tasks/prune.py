"""Beat: once a day, delete from the system of record what is past retention
(``RXFLEET_RETENTION_DAYS``: results, dead letters, finished runs, audit events)."""

from __future__ import annotations

from config import get_settings
from rxfleet import context
from workers.app import app


@app.task(ignore_result=True, send_events=False)
def prune() -> dict[str, int]:
    days = get_settings().retention_days
    return context.database().prune(days, days)
