"""Depth first on a real Redis broker: a worker takes a batch's later links before an
earlier link of another batch, and the queue depth counts every priority's list.

A chain's first message is published exactly as the producer publishes it (the
fleet's Celery settings, ``workers.pipeline.batch_chain``), then read back in the
order kombu's Redis transport hands messages to a worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from celery import Celery
from kombu import Connection

from config import Settings
from rxfleet.embedded.redis_server import LocalRedis
from rxfleet.stores.broker import redis_depths
from workers.app import celery_config
from workers.pipeline import LINKS, PRIORITY

QUEUE = "rxfleet.cpu"


@pytest.fixture
def broker() -> Iterator[tuple[str, Celery]]:
    server = LocalRedis().start()
    try:
        fleet = Celery("priority-test")
        fleet.conf.update(celery_config(Settings(redis_url=server.url)))
        yield server.url, fleet
    finally:
        server.stop()


def _publish(fleet: Celery, link: str, batch: int) -> None:
    fleet.signature(link, args=("run", batch, 500), immutable=True,
                    priority=PRIORITY.get(link, 0)).apply_async()  # fmt: skip


def _taken_in_order(url: str, fleet: Celery, count: int) -> list[tuple[str, int]]:
    """(task, batch) of the first ``count`` messages, as a worker would take them."""
    taken: list[tuple[str, int]] = []
    options = fleet.conf.broker_transport_options
    with Connection(url, transport_options=options) as conn:
        queue = conn.SimpleQueue(QUEUE, no_ack=True)
        for _ in range(count):
            message = queue.get(timeout=5)
            args = message.payload[0]
            taken.append((message.headers["task"], int(args[1])))
        queue.close()
    return taken


def test_later_links_are_taken_before_earlier_ones(broker: tuple[str, Celery]) -> None:
    url, fleet = broker
    intake, crosswalk, _, record = LINKS
    # Published oldest first: batch 2's intake, 1's crosswalk, 0's record.
    for link, batch in ((intake, 2), (crosswalk, 1), (record, 0)):
        _publish(fleet, link, batch)
    assert redis_depths(redis.Redis.from_url(url), [QUEUE])() == {QUEUE: 3}
    assert _taken_in_order(url, fleet, 3) == [(crosswalk, 1), (record, 0), (intake, 2)]
    assert redis_depths(redis.Redis.from_url(url), [QUEUE])() == {QUEUE: 0}
