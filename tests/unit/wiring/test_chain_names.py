"""The chain names its links instead of importing them: the names must be real tasks."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

from celery.exceptions import Retry

from rxfleet.errors import BatchDeferred
from workers.app import TASK_MODULES, app
from workers.base import FleetRequest
from workers.pipeline import LINKS, batch_chain


def test_every_link_of_the_chain_is_a_registered_task() -> None:
    for module in TASK_MODULES:
        importlib.import_module(module)
    assert set(LINKS) <= set(app.tasks), set(LINKS) - set(app.tasks)
    assert "tasks.token.refresh_token" in app.tasks  # what beat schedules


def test_the_chain_carries_ids_only_and_routes_submit_to_the_gateway_queue() -> None:
    links = batch_chain("RUN", 0, 500).tasks
    assert [s.task for s in links] == list(LINKS)
    assert all(s.args == ("RUN", 0, 500) and s.immutable for s in links)
    routes = app.conf.task_routes
    assert routes["tasks.submit.*"]["queue"] == app.conf.task_queues[1].name


def test_each_queue_is_bound_to_its_own_exchange() -> None:
    queues = app.conf.task_queues
    assert [(q.exchange.name, q.routing_key) for q in queues] == [(q.name, q.name) for q in queues]
    assert len({q.exchange.name for q in queues}) == len(queues) == 2


def test_a_retry_event_names_its_reason_and_carries_no_traceback() -> None:
    """Flower keeps a retry's traceback after the task succeeds: send none."""
    sent: list[tuple[str, dict[str, object]]] = []
    request = FleetRequest.__new__(FleetRequest)
    request._task = SimpleNamespace(acks_late=False)  # type: ignore[attr-defined]
    request.send_event = lambda kind, **fields: sent.append((kind, fields))  # type: ignore[method-assign]
    why = BatchDeferred("gateway asked to wait (Retry-After)")
    reason = Retry(exc=why)
    request.on_retry(SimpleNamespace(exception=reason, traceback="Traceback (most recent...)"))
    shown = "BatchDeferred('gateway asked to wait (Retry-After)')"
    assert sent == [("task-retried", {"exception": shown, "traceback": ""})]
