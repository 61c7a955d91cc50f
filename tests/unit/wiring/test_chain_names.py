"""The chain names its links instead of importing them: the names must be real tasks."""

from __future__ import annotations

import importlib

from workers.app import TASK_MODULES, app
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
