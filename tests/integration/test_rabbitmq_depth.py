"""``rxfleet_queue_depth`` on RabbitMQ: read with a passive ``queue.declare`` over AMQP.

It uses the machine's RabbitMQ at 127.0.0.1:5672 (guest) when one answers, touching
only queues of its own (random names, expiring by themselves within a minute should
the test die); otherwise it starts a private node (``bench.rabbitmq``, slower). With
neither, it fails saying so: a depth nobody read on RabbitMQ is not shown to work."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from bench.rabbitmq import private_rabbitmq, sbin
from rxfleet.metrics import Snapshot, families
from rxfleet.stores.broker import broker_depths
from rxfleet.stores.connection import get_redis
from rxfleet.stores.metrics import Counters

SHARED = "amqp://guest:guest@127.0.0.1:5672//"


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def amqp_url() -> Iterator[str]:
    if _answers(5672):
        yield SHARED
        return
    if sbin() is None:
        pytest.fail("no RabbitMQ: none answers on 127.0.0.1:5672 and rabbitmq-server is absent")
    with private_rabbitmq() as url:
        yield url


def test_queue_depths_are_read_from_rabbitmq(amqp_url: str) -> None:
    tag = uuid.uuid4().hex[:10]
    full, empty, absent = f"rxtest.{tag}.cpu", f"rxtest.{tag}.gateway", f"rxtest.{tag}.none"
    queues = [Queue(n, Exchange(""), routing_key=n, durable=False,
                    queue_arguments={"x-expires": 60_000}) for n in (full, empty)]  # fmt: skip
    with Connection(amqp_url) as conn:
        for queue in queues:
            queue(conn.default_channel).declare()
        producer = conn.Producer()
        for n in range(3):
            producer.publish({"n": n}, routing_key=full, exchange="")
        try:
            read = broker_depths(amqp_url, [full, empty, absent], get_redis)
            depths = read()
            assert depths == {full: 3, empty: 0}  # a queue not declared yet is left out
            snap = Snapshot(Counters(), {}, None, {}, 0.0, 0, 0, queue_depths=depths)
            family = next(f for f in families(snap) if f.name == "rxfleet_queue_depth")
            assert {s.labels["queue"]: s.value for s in family.samples} == {full: 3.0, empty: 0.0}
            with Connection(amqp_url) as again:  # nothing was consumed by the reading
                channel: Any = again.default_channel
                assert channel.queue_declare(full, passive=True).message_count == 3
        finally:
            for queue in queues:
                queue(conn.default_channel).delete()
