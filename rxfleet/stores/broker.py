"""The Celery broker's queue depths, whatever the broker: Redis or RabbitMQ (AMQP).

On Redis a Celery queue is a list named after the queue, and one more for each
priority step above 0 (kombu's ``queue\x06\x16N``): its depth is their ``LLEN``s
summed. On RabbitMQ
the depth is what a passive ``queue.declare`` answers (``message_count``: the
messages ready, not those delivered and unacknowledged); a passive declare
creates nothing, and a queue that does not exist yet is left out, not shown as 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from amqp.exceptions import NotFound
from kombu import Connection

Depths = Callable[[], dict[str, int]]
AMQP_TIMEOUT = 5.0
#: The Redis transport's priority steps (kombu's ``priority_steps``): a message of
#: priority 0 is taken before one of 3, 6 or 9 (on Redis, lower goes first).
PRIORITY_STEPS = (0, 3, 6, 9)
#: Between a queue's name and its step in the names of its lists (kombu's ``sep``).
PRIORITY_SEP = "\x06\x16"


def redis_queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold ``queue``'s messages, one per priority step."""
    return [queue] + [f"{queue}{PRIORITY_SEP}{step}" for step in PRIORITY_STEPS if step]


def redis_depths(client: redis.Redis, queues: Sequence[str]) -> Depths:
    """Depths read with ``LLEN`` on the broker's Redis (every priority step's list)."""
    steps = len(PRIORITY_STEPS)

    def read() -> dict[str, int]:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            for key in redis_queue_keys(queue):
                pipe.llen(key)
        lengths = [int(n) for n in pipe.execute()]
        return {q: sum(lengths[i * steps : (i + 1) * steps]) for i, q in enumerate(queues)}

    return read


def amqp_depths(url: str, queues: Sequence[str]) -> Depths:
    """Depths read with a passive ``queue.declare`` on an AMQP broker (RabbitMQ)."""

    def read() -> dict[str, int]:
        found: dict[str, int] = {}
        with Connection(url, connect_timeout=AMQP_TIMEOUT) as conn:
            conn.ensure_connection(max_retries=1)
            for queue in queues:
                channel: Any = conn.channel()  # a failed passive declare closes its channel
                try:
                    _, count, _ = channel.queue_declare(queue=queue, passive=True)
                    found[queue] = int(count)
                except NotFound:
                    continue
                finally:
                    channel.close()
        return found

    return read


def no_depths() -> dict[str, int]:
    return {}


def broker_depths(url: str, queues: Sequence[str], client: Callable[[str], redis.Redis]) -> Depths:
    """The depth reader for the broker at ``url`` (``client``: a Redis client for a URL)."""
    if url.startswith(("redis://", "rediss://", "unix://")):
        return redis_depths(client(url), queues)
    if url.startswith(("amqp://", "amqps://", "pyamqp://")):
        return amqp_depths(url, queues)
    return no_depths
