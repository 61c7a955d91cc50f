"""Link 1: validate. Pure: never retries; a broken rule is a result."""

from __future__ import annotations

from typing import Any

from rxfleet import context
from rxfleet.links.validate import validate_batch
from workers.app import app


@app.task
def validate(run_id: str, first: int, count: int) -> dict[str, Any]:
    return validate_batch(context.runs(), run_id, context.batch(first, count)).as_dict()
