"""The fleet's Celery app with one poisoned link, for the chaos tests only:
``celery -A tests.integration.chaos_app worker ...``.

The crosswalk link kills its worker process (``os._exit``) for any batch whose
first claim id starts with ``POISON``: a message that would be redelivered for
ever; and raises an exception whose text quotes ``LEAKED_VALUE`` (standing for a
raw PHI value) for a batch whose first claim id starts with ``LEAK``. Everything
else is the product's own app and links.
"""

from __future__ import annotations

import os
from typing import Any

import tasks.crosswalk
from rxfleet import context
from workers.app import app

POISON_PREFIX = "POISON"
LEAK_PREFIX = "LEAK"
LEAKED_VALUE = "ZH987654321"  # the test gives a claim this cardholder id

_crosswalk = app.tasks[tasks.crosswalk.crosswalk.name]
_link = _crosswalk.run


def _crashing(run_id: str, first: int, count: int) -> Any:
    records = context.runs().load(run_id, [first])
    if records and (records[0].claim_id or "").startswith(POISON_PREFIX):
        os._exit(70)  # the worker process dies mid-link, every time
    if records and (records[0].claim_id or "").startswith(LEAK_PREFIX):
        raise ValueError(f"cannot map cardholder {LEAKED_VALUE}")  # text quoting PHI
    return _link(run_id, first, count)


_crosswalk.run = _crashing  # type: ignore[method-assign]

__all__ = ["app"]
